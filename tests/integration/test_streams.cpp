// Event streams and the API side by side, through a real `berth serve`: open SSE streams (a
// dashboard per tab, `berth logs -f`, `berth deploy`) give their worker back while they wait,
// so the API keeps answering however many are open; past --http-streams a new stream is
// refused at once with 503 `saturated` and Retry-After, and a closed stream frees its place.
#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/integration/deploy_support.hpp"
#include "tests/integration/harness.hpp"

using namespace berth::it;
using namespace std::chrono_literals;

namespace {

// A project whose deploy sleeps in its build for `build_s` seconds: its event stream stays
// open (and idle) that long. Returns the deployment id.
std::string slow_deployment(server& srv, const temp_dir& tmp, const std::string& name, int build_s) {
  auto site = make_site(tmp, name + "-src", "1");
  set_site(site, "BUILD_SLEEP", std::to_string(build_s));
  REQUIRE(srv.api().post("/api/projects", site_manifest(name, site)).status == 201);
  auto queued = srv.api().post("/api/projects/" + name + "/deployments", std::string{});
  REQUIRE(queued.status == 202);
  return queued.body.at("id");
}

// Opens the deployment's event stream on its own connection and reads its response head.
std::unique_ptr<raw_connection> open_stream(uint16_t port, const std::string& id, raw_response& head) {
  auto c = std::make_unique<raw_connection>(port);
  c->send("GET /api/deployments/" + id + "/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
          token_for(port) + "\r\n\r\n");
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline && c->received().find("\r\n\r\n") == std::string::npos &&
         c->read_for(50ms)) {
  }
  head = parse_response(c->received());
  return c;
}

int open_streams(uint16_t port) {
  auto h = client(port, auth::none(), 10s).get("/health");
  return h.body.is_object() ? h.body.value("http", json::object()).value("streams", -1) : -1;
}

}  // namespace

TEST_CASE("streams - 32 open event streams while 200 API requests all get answers", "[integration][http]") {
  temp_dir tmp;
  // Fewer workers than streams: each stream held a worker, the API would be locked out.
  server srv(tmp.path(), deploy_server_options({"--http-threads", "4"}));
  auto id = slow_deployment(srv, tmp, "sx-tabs", 60);

  std::vector<std::unique_ptr<raw_connection>> streams;
  for (int i = 0; i < 32; ++i) {
    raw_response head;
    streams.push_back(open_stream(srv.port(), id, head));
    INFO(head.describe());
    REQUIRE(head.status == 200);
    REQUIRE(head.header("Content-Type").find("text/event-stream") == 0);
  }
  CHECK(open_streams(srv.port()) == 32);

  // 200 requests from 8 clients at once: every one is answered, none refused.
  std::atomic<int> ok{0}, other{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t)
    clients.emplace_back([&, t] {
      client c(srv.port(), 30s);
      for (int k = 0; k < 25; ++k) {
        auto r = (k + t) % 2 ? c.get("/api/projects") : c.get("/api/projects/sx-tabs");
        (r.status == 200 ? ok : other).fetch_add(1);
      }
    });
  for (auto& t : clients) t.join();
  CHECK(ok.load() == 200);
  CHECK(other.load() == 0);

  // The streams are still open and alive: the progress they were sent is there.
  for (auto& s : streams) {
    s->read_for(10ms);
    CHECK_FALSE(s->closed());
    CHECK(s->received().find("event: progress") != std::string::npos);
  }
  REQUIRE(srv.api().post("/api/deployments/" + id + "/cancel", std::string{}).status == 200);
}

TEST_CASE("streams - past --http-streams a new stream gets 503 with Retry-After, a closed one frees its place",
          "[integration][http]") {
  temp_dir tmp;
  server srv(tmp.path(), deploy_server_options({"--http-streams", "3"}));
  auto id = slow_deployment(srv, tmp, "sx-cap", 60);

  std::vector<std::unique_ptr<raw_connection>> streams;
  for (int i = 0; i < 3; ++i) {
    raw_response head;
    streams.push_back(open_stream(srv.port(), id, head));
    REQUIRE(head.status == 200);
  }
  raw_response refused;
  auto fourth = open_stream(srv.port(), id, refused);
  INFO(refused.describe());
  CHECK(refused.status == 503);
  CHECK(refused.error_code() == "saturated");
  CHECK_FALSE(refused.header("Retry-After").empty());
  // Plain API calls are not streams: still answered.
  CHECK(srv.api().get("/api/projects/sx-cap").status == 200);

  // One stream closes; berth notices at its next write (a keep-alive at the latest) and the
  // place is free again.
  streams.pop_back();
  REQUIRE(eventually([&] { return open_streams(srv.port()) == 2; }, 30s));
  raw_response again;
  auto fifth = open_stream(srv.port(), id, again);
  INFO(again.describe());
  CHECK(again.status == 200);
  REQUIRE(srv.api().post("/api/deployments/" + id + "/cancel", std::string{}).status == 200);
}
