// The traffic clients (traffic_support.hpp) and the traffic app (tests/apps/traffic) on their
// own, with no berth and no proxy in between: what the zero-downtime tests count must mean what
// they say. SIGTERM closes the app's WebSocket and kept-alive connections cleanly (a close frame,
// "Connection: close") and ends streams with their last chunk; SIGKILL is seen as unexpected.
#include <signal.h>

#include <filesystem>
#include <sstream>

#include <catch2/catch.hpp>

#include "tests/integration/harness.hpp"
#include "tests/integration/traffic_support.hpp"

using namespace berth::it;
using namespace std::chrono_literals;

namespace {

namespace fs = std::filesystem;

std::string describe(const std::string& name, const traffic_report& r) {
  std::ostringstream out;
  out << name << ": ok " << r.ok << ", failed " << r.failed << ", unexpected closes " << r.unexpected_closes
      << ", clean closes " << r.clean_closes;
  for (auto& b : r.bodies_seen) out << " [" << b << "]";
  for (auto& e : r.errors) out << "\n    " << e;
  return out.str();
}

// tests/apps/traffic at `version`, serving on a free port until destroyed.
struct app {
  temp_dir tmp;
  uint16_t port = free_port();
  process proc;
  explicit app(const std::string& version) {
    for (const char* f : {"server.py", "build.py"})
      fs::copy_file(std::string(BERTH_TEST_APPS) + "/traffic/" + f, tmp / f);
    write_file(tmp / "VERSION", version + "\n");
    proc.start({"/bin/sh", "-c", "exec python3 '" + (tmp / "server.py") + "'"}, {{"PORT", std::to_string(port)}},
               tmp / "app.log");
    bool up = false;
    for (int i = 0; i < 200 && !up; ++i) {
      try {
        raw_connection probe(port);
        up = true;
      } catch (const std::exception&) {
        std::this_thread::sleep_for(25ms);
      }
    }
    INFO(read_file(tmp / "app.log"));
    REQUIRE(up);
  }
  target at() const { return target{"127.0.0.1", port, "", {}}; }
};

}  // namespace

TEST_CASE("traffic clients: the app ends websockets and streams and kept-alive connections cleanly on SIGTERM",
          "[integration][traffic]") {
  app a("7");
  auto ws = websocket_client(a.at(), "/ws", 50ms, false);
  auto post = keepalive_post_client(a.at(), "/echo", 20ms);
  auto get = new_connection_client(a.at(), "/", 50ms);
  auto stream = streaming_client(a.at(), "/stream");
  for (auto* c : {ws.get(), post.get(), get.get(), stream.get()}) c->start();
  std::this_thread::sleep_for(1500ms);  // mid-stream (a stream lasts 3 s)
  a.proc.signal(SIGTERM);
  CHECK(a.proc.wait(3s) == 0);  // it exits by itself, quickly
  auto w = ws->stop(), p = post->stop(), g = get->stop(), s = stream->stop();
  INFO(describe("websocket", w) << "\n" << describe("post", p) << "\n" << describe("get", g) << "\n"
                                << describe("stream", s) << "\napp log:\n" << read_file(a.tmp / "app.log"));
  CHECK(w.ok >= 10);
  CHECK(w.failed == 0);
  CHECK(w.clean_closes == 1);  // the close frame (1001)
  CHECK(w.unexpected_closes == 0);
  CHECK(w.bodies_seen.front() == "release 7");  // the greeting names the release
  CHECK(p.ok >= 20);
  CHECK(p.unexpected_closes == 0);
  CHECK(p.clean_closes == 1);  // "Connection: close" on the answer after SIGTERM
  CHECK(g.ok >= 10);
  CHECK(g.bodies_seen == std::vector<std::string>{"release 7"});
  CHECK(s.ok >= 1);  // the stream ended early, cleanly (its last chunk)
  // (Its next request may still be reset: a connect that reached the listen backlog just
  // before the app closed its listener. A proxy in front never sends to a stopping release.)
  CHECK(s.longest_stall_ms < 2000);
  // After the app is gone, new connections are refused: the clients count that as failures.
  CHECK(p.failed + g.failed > 0);
}

TEST_CASE("traffic clients: a killed app is an unexpected close and a broken release fails its health",
          "[integration][traffic]") {
  app a("broken");
  auto health = raw_request(a.port, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  CHECK(health.status == 500);
  auto ws = websocket_client(a.at(), "/ws", 50ms, false);
  auto stream = streaming_client(a.at(), "/stream");
  ws->start();
  stream->start();
  std::this_thread::sleep_for(800ms);
  a.proc.kill9();
  std::this_thread::sleep_for(300ms);
  auto w = ws->stop(), s = stream->stop();
  INFO(describe("websocket", w) << "\n" << describe("stream", s));
  CHECK(w.ok >= 5);
  CHECK(w.clean_closes == 0);
  CHECK(w.unexpected_closes == 1);
  CHECK(s.unexpected_closes >= 1);
  CHECK(s.failed >= 1);  // the stream broke before its end
}
