// What the driver-level container tests share: the engine, a scratch data dir, release folders.
#pragma once
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include <catch2/catch.hpp>

#include "runtime/docker/engine.hpp"
#include "tests/common/docker_env.hpp"

// Catch2 v2 has no SKIP: say why and leave the test (ctest shows the warning).
#define DOCKER_OR_SKIP()                                                  \
  do {                                                                    \
    if (auto why_ = berth::it::docker_skip_reason(); !why_.empty()) {     \
      WARN("SKIPPED: " << why_);                                          \
      return;                                                             \
    }                                                                     \
  } while (0)

// A status that must be ok; its message is shown when it is not.
#define REQUIRE_OK(expr)           \
  do {                             \
    auto s_ = (expr);              \
    INFO(s_.message());            \
    REQUIRE(s_.is_ok());           \
  } while (0)

namespace berth::dk {

std::shared_ptr<docker_engine> test_engine();

// A fresh folder under the temp dir, removed when it goes.
struct scratch {
  std::filesystem::path dir;
  explicit scratch(const std::string& tag);
  ~scratch();
};

// A release folder of a busybox httpd app: index.html saying `body`; with `dockerfile` (its
// own Dockerfile) when not "".
void write_httpd_release(const std::filesystem::path& folder, const std::string& body,
                         const std::string& dockerfile = "");
// The command that serves /app on $PORT (busybox httpd needs a shell for $PORT).
std::vector<std::string> httpd_command();

// GET http://127.0.0.1:<port><path> body ("" when no answer), retried up to `tries` × 100 ms.
std::string http_get(uint16_t port, const std::string& path = "/", int tries = 50);

// Removes what a test's project left on the engine when it goes (a failed REQUIRE included).
struct project_cleanup {
  std::shared_ptr<docker_engine> engine;
  std::string data_dir, project;
  ~project_cleanup();
};

// A free port on 127.0.0.1 (bound then released).
uint16_t free_port();

// Polls `f` every 50 ms until it holds or `limit` passes; then asks once more.
template <class F>
bool eventually(F f, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return f();
}

}  // namespace berth::dk
