// What the HAProxy router tests share (test_haproxy_admin.cpp, test_haproxy_canary.cpp): the
// real binary, its master run from a 0700 temp dir with haproxy_command, a fixture that writes
// a layout and waits until HAProxy is ready, and one-shot GETs.
#pragma once
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "runtime/proxy/haproxy.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/loopback_server.hpp"
#include "tests/integration/plain_http_support.hpp"

namespace berth::it {

// The installed haproxy ("" when there is none).
std::string haproxy_binary();

// Runs argv in its own process group, output to `log`; returns the exit code (-1: signal).
int run_to_end(const std::vector<std::string>& argv, const std::string& log);

// The HAProxy master (foreground, -W) in its own process group; the group (master, workers,
// old workers) is killed when the object goes, also when a test fails.
class haproxy_process {
 public:
  haproxy_process(const std::string& binary, const std::string& dir);
  ~haproxy_process();
  haproxy_process(const haproxy_process&) = delete;
  haproxy_process& operator=(const haproxy_process&) = delete;
  std::string log() const { return read_file(log_); }

 private:
  pid_t pid_ = -1;
  std::string log_;
};

proxy_route route(const std::string& project, const std::string& host, uint16_t listen, uint16_t upstream,
                  std::vector<std::string> domains = {});

// A temp dir (mode 0700 from mkdtemp), the layout's files written, HAProxy started and ready.
struct router_fixture {
  temp_dir tmp;
  router_layout layout;
  std::unique_ptr<haproxy_process> proc;
  std::unique_ptr<haproxy_admin> admin;

  explicit router_fixture(std::vector<proxy_route> routes, bool with_ask = false);
  // sync_maps with the maps of `layout`.
  status sync();
  std::vector<int> workers();
  std::string host(const std::string& name) const { return name + ":" + std::to_string(layout.http_port); }
};

// Listens on 127.0.0.1:<free port> until destroyed: reads each request (and its body, by
// Content-Length), waits `delay`, answers `status` with body "<name>\n", kept alive. Status 0:
// resets the connection instead of answering (an app that crashed mid-request).
class answering_upstream {
 public:
  answering_upstream(std::string name, int status, std::chrono::milliseconds delay = std::chrono::milliseconds(0));
  answering_upstream(const answering_upstream&) = delete;
  answering_upstream& operator=(const answering_upstream&) = delete;
  uint16_t port() const { return server_.port(); }
  int answered() const { return answered_; }

 private:
  void serve(int fd);
  std::string name_;
  int status_;
  std::chrono::milliseconds delay_;
  std::atomic<int> answered_{0};
  loopback_server server_;  // last: it stops (joins serve()) before the members above go
};

// One command on a runtime API socket (<dir>/admin.sock, or master.sock with "@!<pid> ..."):
// its whole answer ("" when the socket cannot be reached).
std::string runtime_command(const std::string& socket, const std::string& command);
// The master's reload count (show proc), -1 when unknown.
long master_reloads(const std::string& dir);
// The current worker's DroppedLogs (show info): request log lines it could not send.
long dropped_logs(const std::string& dir);

// One new connection, one GET.
plain_response get_once(uint16_t port, const std::string& host, const std::string& path = "/");
std::string body_of(const plain_response& r);

}  // namespace berth::it

#define SKIP_WITHOUT_HAPROXY()                      \
  if (berth::it::haproxy_binary().empty()) {        \
    WARN("haproxy is not installed: skipped");      \
    return;                                         \
  }
