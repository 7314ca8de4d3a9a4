// Canary releases as users see them: a real `berth serve --switch-mode proxy --proxy-engine
// haproxy`, a project from tests/apps/canary deployed at release 1 (good; a first deploy has no
// canary: nothing serves to compare it with), kept-alive GET clients on its stable port, and a
// candidate deployed with production.canary that fails 20 % of its requests, is 300 ms slower,
// is good, gets no traffic, is promoted or aborted by hand, or has berth killed under it.
// Skipped (WARN) without HAProxy.
#include <algorithm>
#include <iostream>
#include <sstream>

#include <catch2/catch.hpp>

#include "tests/integration/canary_support.hpp"
#include "tests/integration/cli_support.hpp"

using namespace berth::it;
using namespace std::chrono_literals;

namespace {

#define SKIP_WITHOUT_HAPROXY()                             \
  if (!have_haproxy()) {                                   \
    WARN("HAProxy is not installed: canary test skipped"); \
    return;                                                \
  }

json canary_spec(std::vector<int> steps, int interval_s, int min_requests, json extra = json::object()) {
  json c = {{"steps", steps}, {"interval_s", interval_s}, {"min_requests", min_requests}};
  c.update(extra);
  return c;
}

// "step/verdict percent candidate(req/err) serving(req/err)" per canary_step event, for failure messages.
std::string told(const std::vector<json>& steps) {
  std::ostringstream out;
  for (auto& e : steps) {
    auto& d = e["data"];
    out << "\n  step " << d.value("step", 0) << " " << d.value("verdict", "") << " at " << d.value("percent", 0)
        << " %: candidate " << d["candidate"].dump() << ", serving " << d["serving"].dump() << " - "
        << d.value("reason", "");
  }
  return out.str();
}

// The canary_step event of `step` with `verdict` (null when none).
json verdict_of(const std::vector<json>& steps, int step, const std::string& verdict) {
  for (auto& e : steps)
    if (e["data"].value("step", 0) == step && e["data"].value("verdict", "") == verdict) return e["data"];
  return nullptr;
}

// j[path...], or an empty object where the path ends early (so .value() reads defaults).
json at(const json& j, std::initializer_list<const char*> path) {
  const json* cur = &j;
  for (auto key : path) {
    if (!cur->is_object() || !cur->contains(key)) return json::object();
    cur = &(*cur)[key];
  }
  return cur->is_object() ? *cur : json::object();
}

bool has_phase(const json& detail, const std::string& phase) {
  auto names = phase_names(detail);
  return std::find(names.begin(), names.end(), phase) != names.end();
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

bool saw(const std::vector<std::string>& answers, const std::string& line) {
  return std::find(answers.begin(), answers.end(), line) != answers.end();
}

std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (auto& l : lines) out += "\n  " + l;
  return out;
}

// A candidate the bounds reject, with steady traffic on the stable port: the deployment fails
// with canary_failed at step 1 and the serving release never stops. Returns the failed detail.
struct breach_run {
  json detail;
  std::vector<json> steps;
  double error_share = 0;  // of the clients' requests while the split was on
  uint64_t failed_in_split = 0, failed_after = 0, requests_in_split = 0;
};

breach_run run_breach(canary_env& e, const std::string& mode, const json& spec) {
  breach_run out;
  pid_t v1 = e.production_pid();
  REQUIRE(v1 > 0);
  get_clients clients(e.stable, 4, 5ms);
  REQUIRE(eventually([&] { return clients.now().ok >= 100; }, 30s));
  auto before = clients.now();
  auto id = e.deploy("2", mode, spec);
  auto live = e.wait_split(id);
  pid_t candidate = at(live, {"resources", "candidate"}).value("pid", 0);
  auto split_on = clients.now();
  out.detail = e.finish(id);
  auto reverted = clients.now();
  // Traffic goes on after the failed end: a few hundred more requests (seconds on a busy machine).
  REQUIRE(eventually([&] { return clients.now().requests() >= reverted.requests() + 300; }, 60s));
  auto end = clients.stop();
  out.steps = e.canary_steps(id);
  out.failed_in_split = reverted.failed - split_on.failed;
  out.requests_in_split = reverted.requests() - split_on.requests();
  out.failed_after = end.failed - reverted.failed;
  out.error_share = out.requests_in_split ? double(out.failed_in_split) / double(out.requests_in_split) : 1;

  INFO(brief(out.detail) << "\ncanary steps:" << told(out.steps) << "\nclient errors:" << joined(clients.errors())
                         << "\n--- server log tail ---\n"
                         << e.log_tail());
  REQUIRE(out.detail.value("status", "") == "failed");
  CHECK(out.detail["error"].value("code", "") == "canary_failed");
  CHECK(out.detail["error"].value("phase", "") == "canary");
  auto canary = at(out.detail, {"resources", "canary"});
  CHECK(canary.value("step", 0) == 1);
  CHECK(canary.value("verdict", "") == "failed");
  CHECK(canary.value("percent", -1) == 0);
  auto message = out.detail["error"].value("message", "");
  CHECK(contains(message, "candidate "));
  CHECK(contains(message, "serving "));
  CHECK(before.failed == 0);                                   // nothing failed before the canary
  CHECK(saw(clients.answers(), "release 2 " + mode));          // the candidate did get a share
  CHECK(out.failed_after == 0);                                // none after the revert
  // The serving release never stopped and answers every request again.
  CHECK(e.production_pid() == v1);
  CHECK(alive(v1));
  std::vector<std::string> bad;
  int v1_answers = e.answers(50, answer_of("1", "good"), &bad);
  INFO("not v1:" << joined(bad));
  CHECK(v1_answers == 50);
  CHECK(candidate > 0);
  CHECK(eventually([&] { return !alive(candidate); }, 20s));
  // The audit trail: the step began (watching at 10 %), then the verdict with the figures.
  auto began = verdict_of(out.steps, 1, "watching");
  auto failed = verdict_of(out.steps, 1, "failed");
  REQUIRE(began.is_object());
  REQUIRE(failed.is_object());
  CHECK(began.value("percent", 0) == 10);
  CHECK(failed["candidate"].value("requests", 0) >= spec.value("min_requests", 0));
  CHECK(failed["serving"].value("requests", 0) > 0);
  CHECK(!verdict_of(out.steps, 2, "watching").is_object());  // it never reached step 2
  return out;
}

}  // namespace

TEST_CASE("canary - a candidate failing 20 % of requests is reverted at its first step", "[integration][canary]") {
  SKIP_WITHOUT_HAPROXY();
  canary_env e;
  CHECK_FALSE(has_phase(e.first, "canary"));  // release 1 had a canary set, but nothing to compare with
  auto r = run_breach(e, "fail20", canary_spec({10, 50}, 60, 30));
  auto message = r.detail["error"].value("message", "");
  INFO(message);
  CHECK(contains(message, "error rate"));
  auto failed = verdict_of(r.steps, 1, "failed");
  REQUIRE(failed.is_object());
  CHECK(failed["candidate"].value("errors", 0) > 0);
  CHECK(r.error_share <= 0.05);  // expected 10 % x 20 % = 2 %
  // The closing note's figures: what clients saw, and the time from the split to the revert.
  int64_t step_started = failed.value("step_started_us", int64_t{0});
  int64_t failed_at = 0;
  for (auto& s : r.steps)
    if (s["data"].value("verdict", "") == "failed") failed_at = s.value("ts_us", int64_t{0});
  std::cout << "[canary] fail20 at 10 %: clients saw " << r.failed_in_split << " failed of " << r.requests_in_split
            << " requests while the split was on (" << 100.0 * r.error_share << " %), " << r.failed_after
            << " after the revert; step start -> revert recorded " << (failed_at - step_started) / 1000.0
            << " ms; the proxy's revert " << at(r.detail, {"resources"}).value("canary_revert_ms", json()).dump()
            << " ms; candidate " << failed["candidate"].dump() << ", serving " << failed["serving"].dump()
            << std::endl;
}

TEST_CASE("canary - a candidate 300 ms slower is reverted by the latency bound", "[integration][canary]") {
  SKIP_WITHOUT_HAPROXY();
  canary_env e;
  // slack 150 ms: the serving p99 on a busy machine stays far below 300 - 150 ms.
  auto r = run_breach(e, "slow300", canary_spec({10, 50}, 60, 20, {{"max_p99_ratio", 1.5}, {"p99_slack_ms", 150}}));
  auto message = r.detail["error"].value("message", "");
  INFO(message);
  CHECK(contains(message, "p99"));
  auto failed = verdict_of(r.steps, 1, "failed");
  REQUIRE(failed.is_object());
  CHECK(failed["candidate"].value("p99_ms", 0) >= 300);
  CHECK(failed["candidate"].value("errors", -1) == 0);
  std::cout << "[canary] slow300 at 10 %: " << message << std::endl;
}

TEST_CASE("canary - a good candidate is promoted through every step", "[integration][canary]") {
  SKIP_WITHOUT_HAPROXY();
  canary_env e;
  get_clients clients(e.stable, 4, 5ms);
  REQUIRE(eventually([&] { return clients.now().ok >= 100; }, 30s));
  // A generous p99 slack: a busy machine's hiccups on either side must not fail a good release.
  auto id = e.deploy("2", "good", canary_spec({10, 50}, 3, 5, {{"p99_slack_ms", 1000}}));
  auto d = e.finish(id);
  auto end = clients.stop();
  auto steps = e.canary_steps(id);
  INFO(brief(d) << "\ncanary steps:" << told(steps) << "\nclient errors:" << joined(clients.errors())
                << "\n--- server log tail ---\n"
                << e.log_tail());
  REQUIRE(d.value("status", "") == "completed");
  CHECK(has_phase(d, "canary"));
  for (int step : {1, 2}) {
    auto passed = verdict_of(steps, step, "passed");
    INFO("step " << step);
    REQUIRE(passed.is_object());
    CHECK(passed.value("percent", 0) == (step == 1 ? 10 : 50));
    CHECK(passed["candidate"].value("requests", 0) > 0);
    CHECK(passed["serving"].value("requests", 0) > 0);
  }
  REQUIRE(!steps.empty());
  CHECK(steps.back()["data"].value("verdict", "") == "promoted");
  CHECK(at(d, {"resources", "canary"}).value("verdict", "") == "promoted");
  CHECK(saw(clients.answers(), "release 2 good"));
  CHECK(end.failed == 0);
  std::vector<std::string> bad;
  int v2_answers = e.answers(50, answer_of("2", "good"), &bad);
  INFO("not v2:" << joined(bad));
  CHECK(v2_answers == 50);
}

TEST_CASE("canary - with too little traffic on_no_traffic decides", "[integration][canary]") {
  SKIP_WITHOUT_HAPROXY();
  canary_env e;  // no client: nothing but the health checks, which do not go through the proxy
  auto id = e.deploy("2", "good", canary_spec({50}, 2, 10, {{"on_no_traffic", "fail"}}));
  auto d = e.finish(id);
  {
    INFO(brief(d) << "\ncanary steps:" << told(e.canary_steps(id)) << "\n--- server log tail ---\n" << e.log_tail());
    REQUIRE(d.value("status", "") == "failed");
    CHECK(d["error"].value("code", "") == "canary_failed");
    CHECK(contains(d["error"].value("message", ""), "too little traffic"));
    CHECK(e.answers(20, answer_of("1", "good")) == 20);
  }
  id = e.deploy("3", "good", canary_spec({50}, 2, 10, {{"on_no_traffic", "promote"}}));
  d = e.finish(id);
  auto steps = e.canary_steps(id);
  INFO(brief(d) << "\ncanary steps:" << told(steps) << "\n--- server log tail ---\n" << e.log_tail());
  REQUIRE(d.value("status", "") == "completed");
  auto passed = verdict_of(steps, 1, "passed");
  REQUIRE(passed.is_object());
  CHECK(contains(passed.value("reason", ""), "too little traffic"));
  CHECK(e.answers(20, answer_of("3", "good")) == 20);
}

TEST_CASE("canary - promote and abort by hand", "[integration][canary]") {
  SKIP_WITHOUT_HAPROXY();
  canary_env e;
  // An interval no test waits out, and more requests than any step gets: only a person decides.
  auto spec = canary_spec({10, 50}, 600, 1000000);
  auto id = e.deploy("2", "good", spec);
  e.wait_split(id);
  auto r = e.api().post("/api/deployments/" + id + "/promote", std::string{});
  INFO(r.describe());
  CHECK(r.status == 200);
  auto d = e.finish(id, 60s);  // far within the step's 600 s
  {
    auto steps = e.canary_steps(id);
    INFO(brief(d) << "\ncanary steps:" << told(steps) << "\n--- server log tail ---\n" << e.log_tail());
    REQUIRE(d.value("status", "") == "completed");
    REQUIRE(!steps.empty());
    CHECK(steps.back()["data"].value("verdict", "") == "promoted");
    CHECK(contains(steps.back()["data"].value("reason", ""), "promoted by request"));
    auto asked = e.deployment_event(id, "canary_verdict_requested");
    CHECK(asked.is_object());
    if (asked.is_object()) CHECK(asked["data"].value("verdict", "") == "promote");
    CHECK(e.answers(20, answer_of("2", "good")) == 20);
  }
  // Not in its canary phase (any more): 409; no such deployment: 404.
  for (auto verb : {"promote", "abort"}) {
    auto done = e.api().post("/api/deployments/" + id + "/" + verb, std::string{});
    INFO(done.describe());
    CHECK(done.status == 409);
    CHECK(done.is_json_error());
    auto unknown = e.api().post("/api/deployments/" + e.name + ".9999/" + verb, std::string{});
    INFO(unknown.describe());
    CHECK(unknown.status == 404);
    CHECK(unknown.is_json_error());
    auto nobody = e.api().post(std::string("/api/deployments/no-such-project.1/") + verb, std::string{});
    INFO(nobody.describe());
    CHECK(nobody.status == 404);
  }

  pid_t v2 = e.production_pid();
  id = e.deploy("3", "good", spec);
  e.wait_split(id);
  auto cli = run_cli({"abort", id}, cli_env(*e.srv), "", 60s);
  INFO(cli.describe());
  CHECK(cli.exit_code == 0);
  d = e.finish(id, 60s);
  INFO(brief(d) << "\ncanary steps:" << told(e.canary_steps(id)) << "\n--- server log tail ---\n" << e.log_tail());
  REQUIRE(d.value("status", "") == "failed");
  CHECK(d["error"].value("code", "") == "canary_aborted");
  CHECK(e.production_pid() == v2);
  CHECK(e.answers(20, answer_of("2", "good")) == 20);
}

TEST_CASE("canary - kill -9 of berth mid-canary: reverted at the restart", "[integration][canary][recovery]") {
  SKIP_WITHOUT_HAPROXY();
  canary_env e;
  pid_t v1 = e.production_pid();
  auto id = e.deploy("2", "good", canary_spec({10, 50}, 600, 1000000));
  auto live = e.wait_split(id);
  pid_t candidate = at(live, {"resources", "candidate"}).value("pid", 0);
  REQUIRE(candidate > 0);
  // The split is live: a share of new requests reaches the candidate.
  int to_candidate = 0;
  for (int i = 0; i < 100; ++i) to_candidate += fetch(e.stable).body == answer_of("2", "good");
  CHECK(to_candidate > 0);

  e.srv->kill9();
  e.srv->start();
  auto d = e.finish(id, 60s);
  INFO(brief(d) << "\n--- server log tail ---\n" << e.log_tail(8000));
  REQUIRE(d.value("status", "") == "failed");
  CHECK(d["error"].value("code", "") == "interrupted");
  // The step's start was synced before the crash: the audit log says the candidate had 10 %.
  auto steps = e.canary_steps(id);
  REQUIRE_FALSE(steps.empty());
  CHECK(steps.front()["data"].value("verdict", "") == "watching");
  CHECK(steps.front()["data"].value("percent", 0) == 10);
  CHECK(eventually([&] { return !alive(candidate); }, 30s));
  REQUIRE(eventually(
      [&] {
        try {
          return e.srv->health().at("proxy").value("status", "") == "running";
        } catch (const std::exception&) {
          return false;
        }
      },
      30s));
  CHECK(e.production_pid() == v1);
  // No split is left in HAProxy (which ran on across the restart): every request answers v1.
  std::vector<std::string> bad;
  int v1_answers = e.answers(100, answer_of("1", "good"), &bad);
  INFO("not v1:" << joined(bad));
  CHECK(v1_answers == 100);
}

TEST_CASE("canary - refused at create without the proxy and nothing is left", "[integration][canary]") {
  temp_dir tmp;
  server srv(tmp.path(), deploy_server_options({"--switch-mode", "direct"}));
  auto src = make_canary_app(tmp, "src", "1", "good");
  auto r = srv.api().post("/api/projects", canary_manifest("direct-canary", src, canary_spec({10, 50}, 30, 100)));
  INFO(r.describe());
  CHECK(r.status == 409);
  CHECK(r.error_code() == "runtime_unavailable");
  CHECK(contains(r.raw, "proxy"));
  CHECK(srv.api().get("/api/projects/direct-canary").status == 404);
  CHECK(list_dir(srv.projects_dir()).count("direct-canary") == 0);
  // A canary the manifest cannot mean: 400 naming the field, and nothing made either.
  auto bad = srv.api().post("/api/projects", canary_manifest("direct-canary", src, canary_spec({50, 10}, 30, 100)));
  INFO(bad.describe());
  CHECK(bad.status == 400);
  CHECK(contains(bad.raw, "production.canary.steps"));
  CHECK(srv.api().get("/api/projects/direct-canary").status == 404);
}
