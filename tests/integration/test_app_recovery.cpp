// Apps seen up as soon as they answer, and brought back at once after their first death
// (runtime/net/health_probe, runtime/resilience/restart_policy, actors/keeper), through a real
// `berth serve` with the sample python app (tests/apps/hello).
#include <csignal>
#include <regex>
#include <thread>

#include <catch2/catch.hpp>
#include <httplib.h>

#include "tests/integration/harness.hpp"

using namespace berth::it;
using namespace std::chrono_literals;

namespace {

json manifest_of(const std::string& name, const std::string& src, int interval_ms, json env = json::object()) {
  return {{"name", name},
          {"source", {{"path", src}}},
          {"preview",
           {{"command", {"python3", "server.py"}}, {"health", {{"path", "/"}, {"interval_ms", interval_ms}, {"timeout_s", 60}}}}},
          {"env", env}};
}

std::string make_app(const temp_dir& tmp, const std::string& message) {
  auto dir = tmp / ("app-" + message);
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(std::string(BERTH_TEST_APPS) + "/hello/server.py", dir + "/server.py");
  write_file(dir + "/message.txt", message + "\n");
  return dir;
}

bool answers(uint16_t port) {
  httplib::Client cli("127.0.0.1", port);
  cli.set_connection_timeout(1, 0);
  cli.set_read_timeout(2, 0);
  auto res = cli.Get("/");
  return res && res->status == 200;
}

json preview_of(server& srv, const std::string& name) {
  auto r = srv.api().get("/api/projects/" + name);
  REQUIRE(r.status == 200);
  return r.body.at("environments").at("preview");
}

template <class F>
bool eventually(F f, std::chrono::milliseconds limit = 20s) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (f()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return f();
}

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The delays the keeper announced ("...; restarting in N ms"), in order.
std::vector<long> restart_delays(const std::string& log) {
  std::vector<long> out;
  std::regex re("restarting in ([0-9]+) ms");
  for (auto it = std::sregex_iterator(log.begin(), log.end(), re); it != std::sregex_iterator(); ++it)
    out.push_back(std::stol((*it)[1]));
  return out;
}

}  // namespace

TEST_CASE("apps - a preview that answers late is seen healthy right after its first answer, not an interval later",
          "[integration][preview][apps]") {
  temp_dir tmp;
  server srv(tmp.path());
  auto src = make_app(tmp, "late");
  // The first probes fail (nothing listens for 400 ms); a probe only every interval (8 s) would
  // make the start last more than 8 s.
  constexpr auto interval = 8000ms;
  REQUIRE(srv.api()
              .post("/api/projects", manifest_of("late", src, static_cast<int>(interval.count()), {{"LISTEN_AFTER_MS", "400"}}))
              .status == 201);
  auto asked = now_us();
  auto started = srv.api().post("/api/projects/late/preview/start", std::string{});
  auto answered = now_us();
  INFO(started.describe());
  REQUIRE(started.status == 200);
  CHECK(started.body.at("status") == "running");

  // When the app began to listen, as it printed it into its log.
  auto log_path = srv.projects_dir() + "/late/preview/logs/preview.log";
  std::smatch m;
  std::string log;
  REQUIRE(eventually([&] {
    log = read_file(log_path);
    return std::regex_search(log, m, std::regex("since ([0-9]+)"));
  }));
  auto listening = std::stoll(m[1]);
  INFO("the start answered " << (answered - listening) / 1000.0 << " ms after the app listened, "
                             << (answered - asked) / 1000.0 << " ms after it was asked");
  CHECK(listening - asked >= 400'000);  // it did boot late: the first probes were refused
  CHECK(answered - listening < std::chrono::microseconds(interval).count() / 2);
  CHECK(answered - asked < std::chrono::microseconds(interval).count());
  WARN("preview seen healthy " << (answered - listening) / 1000.0 << " ms after the app listened");
}

TEST_CASE("apps - a SIGKILLed preview comes back at once the first time then after a growing backoff until a crash loop",
          "[integration][preview][apps]") {
  temp_dir tmp;
  server_options o;
  o.extra_args = {"--restart-base-ms", "1200", "--crash-loop-restarts", "3", "--crash-loop-window-s", "300"};
  server srv(tmp.path(), o);
  auto src = make_app(tmp, "killed");
  REQUIRE(srv.api().post("/api/projects", manifest_of("killed", src, 50)).status == 201);
  auto started = srv.api().post("/api/projects/killed/preview/start", std::string{});
  REQUIRE(started.status == 200);
  uint16_t port = started.body.at("port");
  int pid = started.body.at("pid");

  // Three deaths: each brought back (a new process that answers), then the fourth is a crash loop.
  std::vector<double> back_ms;
  for (int death = 1; death <= 3; ++death) {
    auto t0 = std::chrono::steady_clock::now();
    REQUIRE(::kill(pid, SIGKILL) == 0);
    REQUIRE(eventually([&] {
      auto p = preview_of(srv, "killed");
      return p.at("status") == "running" && p.at("pid") != pid && answers(port);
    }));
    back_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    pid = preview_of(srv, "killed").at("pid");
  }
  // What the keeper waited: nothing after the first death (the app had run cleanly); then
  // uniform in [base/2, base] = [600, 1200] ms, then [1200, 2400] ms: a backoff that grows.
  auto delays = restart_delays(srv.log());
  INFO("restart delays announced: " << json(delays).dump() << "; answering again after (ms): " << json(back_ms).dump());
  REQUIRE(delays.size() == 3);
  CHECK(delays[0] == 0);
  CHECK(delays[1] >= 600);
  CHECK(delays[1] <= 1200);
  CHECK(delays[2] >= 1200);
  CHECK(delays[2] <= 2400);
  CHECK(back_ms[1] >= 600);
  CHECK(back_ms[2] >= 1200);
  WARN("SIGKILLed preview answering again after " << back_ms[0] << " ms (python's own boot included)");

  REQUIRE(::kill(pid, SIGKILL) == 0);
  REQUIRE(eventually([&] { return preview_of(srv, "killed").at("status") == "crashed"; }));
  CHECK_THAT(preview_of(srv, "killed").at("reason").get<std::string>(), Catch::Contains("restarts within 300 s"));
}

TEST_CASE("apps - a preview stopped while it is being restarted after a SIGKILL stays stopped",
          "[integration][preview][apps]") {
  temp_dir tmp;
  server srv(tmp.path());
  auto src = make_app(tmp, "stopped");
  // Each start takes 1.5 s (the app listens late): a stop lands while the restart's start runs.
  REQUIRE(srv.api()
              .post("/api/projects", manifest_of("stopped", src, 50, {{"LISTEN_AFTER_MS", "1500"}}))
              .status == 201);
  auto started = srv.api().post("/api/projects/stopped/preview/start", std::string{});
  REQUIRE(started.status == 200);
  uint16_t port = started.body.at("port");
  int pid = started.body.at("pid");

  auto killed = std::chrono::steady_clock::now();
  REQUIRE(::kill(pid, SIGKILL) == 0);
  REQUIRE(eventually([&] { return restart_delays(srv.log()).size() == 1; }));  // the restart runs now
  auto stopped = srv.api().post("/api/projects/stopped/preview/stop", std::string{});
  INFO(stopped.describe());
  REQUIRE(stopped.status == 200);
  CHECK(stopped.body.at("status") == "stopped");
  // Past the restarted process's own boot: nothing of the preview may answer.
  std::this_thread::sleep_until(killed + 3s);
  CHECK_FALSE(answers(port));
  CHECK(preview_of(srv, "stopped").at("status") == "stopped");
}
