// GET /api/projects/{name}/logs through a real `berth serve` with small log rotation and a real
// app (tests/apps/lines) that prints exactly the numbered lines it is asked for: a follower
// that hangs up and reconnects with its last id misses nothing and repeats nothing across
// rotations; an offset older than the kept rotations gets a `gap` with the right figures;
// secret values are masked; each release has its own log, gone when retention prunes it; bad
// parameters are refused with JSON errors.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include <catch2/catch.hpp>

#include "tests/integration/deploy_support.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/log_support.hpp"

using namespace berth::it;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

constexpr uint64_t line_bytes = 11;  // "lgN 000123\n"

std::string numbered(const std::string& tag, int from, int to) {
  std::string out;
  for (int i = from; i < to; ++i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%s %06d\n", tag.c_str(), i);
    out += buf;
  }
  return out;
}

// Deploys `name` and answers its production port and release hash.
std::pair<uint16_t, std::string> deploy(client& api, const std::string& name) {
  auto queued = api.post("/api/projects/" + name + "/deployments", std::string{});
  INFO(queued.describe());
  REQUIRE(queued.status == 202);
  auto done = wait_done(api, queued.body.at("id"), 60s);
  INFO(brief(done));
  REQUIRE(done.value("status", "") == "completed");
  auto prod = api.get("/api/projects/" + name + "/production");
  REQUIRE(prod.status == 200);
  return {prod.body.at("port").get<uint16_t>(), prod.body.at("current").get<std::string>()};
}

// The app's output goes through a pipe to `berth log-writer`: wait until the file has `text`
// (read whole: the test logs are small).
bool logged(const std::string& path, const std::string& text) {
  return eventually([&] {
    std::ifstream in(path, std::ios::binary);
    std::string all{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    return all.find(text) != std::string::npos;
  }, 20s);
}

bool has_text(const std::vector<sse_message>& m, const std::string& text) {
  return log_text(m).find(text) != std::string::npos;
}

// Every `log` event starts where the one before it ended.
void check_contiguous(const std::vector<sse_message>& m, uint64_t from) {
  for (auto& e : events_named(m, "log")) {
    INFO(e.data);
    CHECK(e.body.at("offset").get<uint64_t>() == from);
    from = e.body.at("next_offset").get<uint64_t>();
    CHECK(e.id == std::to_string(from));
  }
}

server_options rotating_options() { return deploy_server_options({"--log-max-bytes", "1100", "--log-max-files", "3"}); }

}  // namespace

TEST_CASE("logs - a follower that hangs up and reconnects with its last id gets every line once, in order, across rotations",
          "[integration][logs]") {
  temp_dir tmp;
  server srv(tmp.path(), rotating_options());
  auto& api = srv.api();
  const std::string name = "lg-follow";
  REQUIRE(api.post("/api/projects", lines_manifest(name, make_lines_app(tmp, "lg-follow-src", "lg1"))).status == 201);
  auto [port, hash] = deploy(api, name);
  auto log_path = srv.projects_dir() + "/" + name + "/production/logs/release-" + hash + ".log";
  REQUIRE(emit_lines(port, 20) == 20);

  std::string path = "/api/projects/" + name + "/logs?follow=1&offset=0";
  std::string last_id;
  std::vector<sse_message> first_session;
  {
    sse_reader live(srv.port(), path);
    REQUIRE(live.wait_for([](auto& m) { return has_text(m, "lg1 000019\n"); }, 20s));
    CHECK(live.status() == 200);
    CHECK(live.content_type() == "text/event-stream");
    // Lines written while it follows are pushed to it.
    REQUIRE(emit_lines(port, 10) == 30);
    REQUIRE(live.wait_for([](auto& m) { return has_text(m, "lg1 000029\n"); }, 20s));
    first_session = live.messages();
    live.hang_up();
  }
  last_id = events_named(first_session, "log").back().id;
  CHECK(last_id == std::to_string(30 * line_bytes));

  // Away: the app writes on and the log rotates (1100-byte files: 100 lines each).
  REQUIRE(emit_lines(port, 150) == 180);
  REQUIRE(logged(log_path, "lg1 000179\n"));
  REQUIRE(fs::exists(log_path + ".1"));

  sse_reader again(srv.port(), "/api/projects/" + name + "/logs?follow=1", last_id);
  REQUIRE(again.wait_for([](auto& m) { return has_text(m, "lg1 000179\n"); }, 20s));
  REQUIRE(emit_lines(port, 20) == 200);
  REQUIRE(again.wait_for([](auto& m) { return has_text(m, "lg1 000199\n"); }, 20s));
  auto second_session = again.messages();
  again.hang_up();

  CHECK(events_named(first_session, "gap").empty());
  CHECK(events_named(second_session, "gap").empty());
  CHECK(log_text(first_session) + log_text(second_session) == numbered("lg1", 0, 200));
  check_contiguous(first_session, 0);
  check_contiguous(second_session, 30 * line_bytes);

  // Much later, an offset the rotations no longer keep: a gap, then the oldest kept line on.
  REQUIRE(emit_lines(port, 400) == 600);
  REQUIRE(logged(log_path, "lg1 000599\n"));
  uint64_t end = 600 * line_bytes;
  sse_reader old(srv.port(), "/api/projects/" + name + "/logs?offset=" + std::to_string(33));
  REQUIRE(old.wait_ended(20s));
  auto m = old.messages();
  REQUIRE(m.size() >= 3);
  REQUIRE(m.front().event == "gap");
  uint64_t kept = 0;
  for (auto* suffix : {"", ".1", ".2"}) kept += fs::file_size(log_path + suffix);
  auto to = m.front().body.at("to").get<uint64_t>();
  CHECK(m.front().body.at("from").get<uint64_t>() == 33);
  CHECK(to == end - kept);  // the oldest byte still on disk
  CHECK(m.front().body.at("lost").get<uint64_t>() == to - 33);
  REQUIRE(to % line_bytes == 0);
  CHECK(log_text(m) == numbered("lg1", static_cast<int>(to / line_bytes), 600));
  check_contiguous(m, to);
  CHECK(m.back().event == "end");
  CHECK(m.back().body.at("next_offset").get<uint64_t>() == end);

  // Without an offset: the last `tail` lines, then the end.
  sse_reader tail(srv.port(), "/api/projects/" + name + "/logs?tail=3");
  REQUIRE(tail.wait_ended(20s));
  CHECK(log_text(tail.messages()) == numbered("lg1", 597, 600));

  // A follower is told when berth stops, and its stream ends.
  sse_reader stopping(srv.port(), "/api/projects/" + name + "/logs?follow=1&tail=1");
  REQUIRE(stopping.wait_for([](auto& m) { return has_text(m, "lg1 000599\n"); }, 20s));
  CHECK(srv.terminate(20s) == 0);
  CHECK(stopping.wait_ended(20s));
  CHECK(stopping.raw().find(": berth is stopping") != std::string::npos);
}

TEST_CASE("logs - each release has its own log, secrets are masked, a pruned release's log is gone",
          "[integration][logs][secrets]") {
  temp_dir tmp;
  server srv(tmp.path(), rotating_options());
  auto& api = srv.api();
  const std::string name = "lg-releases";
  const std::string token = "lg-S3CRET-value-9f2e";
  auto src = make_lines_app(tmp, "lg-releases-src", "lgA");
  auto manifest = lines_manifest(name, src);
  manifest["secrets"] = {{"APP_TOKEN", token}};
  REQUIRE(api.post("/api/projects", manifest).status == 201);

  auto [port_a, hash_a] = deploy(api, name);
  REQUIRE(emit_lines(port_a, 5) == 5);
  REQUIRE(fetch(port_a, "/say-env?name=APP_TOKEN", 5000ms).status == 200);
  auto logs_dir = srv.projects_dir() + "/" + name + "/production/logs/";
  REQUIRE(logged(logs_dir + "release-" + hash_a + ".log", "APP_TOKEN is"));

  write_file(src + "/TAG", "lgB\n");
  auto [port_b, hash_b] = deploy(api, name);
  REQUIRE(hash_b != hash_a);
  REQUIRE(emit_lines(port_b, 3) == 3);

  sse_reader first(srv.port(), "/api/projects/" + name + "/logs?release=" + hash_a);
  REQUIRE(first.wait_ended(20s));
  auto text_a = log_text(first.messages());
  INFO(text_a);
  CHECK(text_a == numbered("lgA", 0, 5) + "APP_TOKEN is ********\n");
  CHECK(first.raw().find(token) == std::string::npos);

  // The current release by default: its lines only. A follower is woken by each new line.
  sse_reader current(srv.port(), "/api/projects/" + name + "/logs?follow=1");
  REQUIRE(current.wait_for([](auto& m) { return has_text(m, "lgB 000002\n"); }, 20s));
  REQUIRE(fetch(port_b, "/say-env?name=APP_TOKEN", 5000ms).status == 200);
  REQUIRE(current.wait_for([](auto& m) { return has_text(m, "APP_TOKEN is ********\n"); }, 20s));
  CHECK(log_text(current.messages()) == numbered("lgB", 0, 3) + "APP_TOKEN is ********\n");
  CHECK(current.raw().find(token) == std::string::npos);
  current.hang_up();

  // keep 2: a third release prunes the first, and its log with it.
  REQUIRE(fs::exists(logs_dir + "release-" + hash_a + ".log"));
  write_file(src + "/TAG", "lgC\n");
  deploy(api, name);
  CHECK_FALSE(fs::exists(logs_dir + "release-" + hash_a + ".log"));
  CHECK_FALSE(fs::exists(logs_dir + "release-" + hash_a + ".log.base"));
  CHECK(fs::exists(logs_dir + "release-" + hash_b + ".log"));
  auto gone = api.get("/api/projects/" + name + "/logs?release=" + hash_a);
  CHECK(gone.status == 404);
  CHECK(gone.body["error"]["code"] == "not_found");
}

TEST_CASE("logs - bad parameters, an unknown project or release are refused with JSON errors",
          "[integration][logs][bad_input]") {
  temp_dir tmp;
  server srv(tmp.path(), rotating_options());
  auto& api = srv.api();
  const std::string name = "lg-bad";
  REQUIRE(api.post("/api/projects", lines_manifest(name, make_lines_app(tmp, "lg-bad-src", "lgX"))).status == 201);
  auto base = "/api/projects/" + name + "/logs";
  struct bad {
    std::string query;
    int status;
    std::string code;
  };
  for (auto& b : std::vector<bad>{{"?env=staging", 400, "invalid_request"},
                                  {"?env=preview&offset=abc", 400, "invalid_request"},
                                  {"?env=preview&offset=-1", 400, "invalid_request"},
                                  {"?env=preview&offset=5", 400, "invalid_request"},  // past the end (nothing written)
                                  {"?env=preview&tail=10001", 400, "invalid_request"},
                                  {"?env=preview&follow=2", 400, "invalid_request"},
                                  {"?release=XYZ", 400, "invalid_request"},
                                  {"?env=preview&release=0123456789ab", 400, "invalid_request"},
                                  {"?release=0123456789ab", 404, "not_found"},
                                  {"", 404, "not_found"}}) {  // no release yet
    auto r = api.get(base + b.query);
    INFO(b.query << " → " << r.describe());
    CHECK(r.status == b.status);
    CHECK(r.body["error"]["code"] == b.code);
  }
  auto unknown = api.get("/api/projects/lg-nobody/logs");
  CHECK(unknown.status == 404);
  CHECK(unknown.body["error"]["code"] == "not_found");
  auto bad_id = api.send("GET", base + "?env=preview", "", {{"Last-Event-ID", "x1"}});
  CHECK(bad_id.status == 400);
  CHECK(bad_id.body["error"]["code"] == "invalid_request");
  // The preview log before any preview: an empty stream that ends at 0.
  sse_reader empty(srv.port(), base + "?env=preview");
  REQUIRE(empty.wait_ended(20s));
  auto m = empty.messages();
  REQUIRE(m.size() == 1);
  CHECK(m[0].event == "end");
  CHECK(m[0].body["next_offset"] == 0);
  // Nothing left behind: no stream holds a slot.
  CHECK(eventually([&] { return srv.health()["http"].value("streams", -1) == 0; }));
}

TEST_CASE("logs - the preview's log and keep-alive comments for a quiet follower", "[integration][logs]") {
  temp_dir tmp;
  server srv(tmp.path(), rotating_options());
  auto& api = srv.api();
  const std::string name = "lg-preview";
  REQUIRE(api.post("/api/projects", site_manifest(name, make_site(tmp, "lg-preview-src", "1"))).status == 201);
  auto started = api.post("/api/projects/" + name + "/preview/start", std::string{});
  INFO(started.describe());
  REQUIRE(started.status == 200);
  // The site prints one line when it starts: "release - mode normal port <port>".
  auto line = "mode normal port " + std::to_string(started.body.at("port").get<int>()) + "\n";
  sse_reader follower(srv.port(), "/api/projects/" + name + "/logs?env=preview&follow=1");
  REQUIRE(follower.wait_for([&](auto& m) { return has_text(m, line); }, 20s));
  CHECK(follower.status() == 200);
  // Nothing more is printed: after 15 s of silence a comment keeps proxies from cutting it.
  CHECK(follower.wait_raw("\n: keepalive\n", 40s));
  CHECK(events_named(follower.messages(), "log").size() == 1);
}
