// The canary's judge (runtime/pipeline/canary.hpp) on figures, and the canary phase of a real
// pipeline run (real app processes, a fake owner): the split each step asks for, the verdicts it
// records, and what a breach, an abort, a promote or a cancel leave behind. The figures come
// from a real traffic_meter fed by a thread (the proxy's part is tested with HAProxy itself).
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <thread>

#include "messages/instance.hpp"
#include "runtime/pipeline/canary.hpp"
#include "runtime/proxy/traffic_meter.hpp"
#include "tests/unit/pipeline_support.hpp"

using namespace berth;
using namespace berth::test;
using namespace std::chrono_literals;

namespace {

side_figures figures(uint64_t requests, uint64_t errors, int64_t p99) { return {requests, errors, p99 / 2, p99}; }

canary_spec spec_of(std::vector<int> steps, int interval_s, int min_requests) {
  canary_spec c;
  c.steps = std::move(steps);
  c.interval_s = interval_s;
  c.min_requests = min_requests;
  return c;
}

// Counts requests for the candidate and the serving release every 5 ms until stopped, as HAProxy's log lines
// would: `candidate_error_every` = n makes every n-th candidate request a 500 (0: none).
struct feeder {
  traffic_meter& meter;
  uint16_t candidate = 0, serving = 0;
  int candidate_error_every = 0;
  int64_t candidate_ms = 2;
  std::atomic<bool> stop{false};
  std::thread th;
  void start() {
    th = std::thread([this] {
      uint64_t n = 0;
      while (!stop.load()) {
        ++n;
        bool fail = candidate_error_every > 0 && n % static_cast<uint64_t>(candidate_error_every) == 0;
        meter.count({candidate, fail ? 500 : 200, candidate_ms, candidate_ms, "--"});
        meter.count({serving, 200, 2, 2, "--"});
        std::this_thread::sleep_for(5ms);
      }
    });
  }
  ~feeder() {
    stop = true;
    if (th.joinable()) th.join();
  }
};

std::vector<std::string> splits(const fake_host& h) {
  std::vector<std::string> out;
  for (auto& op : h.ops())
    if (op.rfind("split ", 0) == 0 || op.rfind("route ", 0) == 0) out.push_back(op);
  return out;
}

std::vector<std::string> verdicts(const fake_host& h) {
  std::vector<std::string> out;
  for (auto& e : h.events())
    if (e.type == ev::canary_step) out.push_back(nlohmann::json::parse(e.data).value("verdict", ""));
  return out;
}

}  // namespace

TEST_CASE("canary judge: no verdict before min_requests, whatever the figures", "[canary]") {
  auto spec = spec_of({10}, 30, 100);
  auto j = judge_step(spec, 10, figures(99, 99, 5000), figures(1000, 0, 3));
  CHECK(j.what == step_judgement::too_few);
  CHECK(j.reason.find("99 of 100 requests") != std::string::npos);
}

TEST_CASE("canary judge: the error rate is compared with the serving release's", "[canary]") {
  auto spec = spec_of({10}, 30, 100);  // max_error_rate 0.01
  auto breach = judge_step(spec, 10, figures(100, 20, 3), figures(900, 0, 3));
  CHECK(breach.what == step_judgement::breach);
  CHECK(breach.reason.find("error rate 20.0 %") != std::string::npos);
  CHECK(breach.reason.find("candidate 100 requests, 20 errors") != std::string::npos);
  CHECK(breach.reason.find("serving 900 requests, 0 errors") != std::string::npos);
  // An app that already fails 5 % of requests is not blamed on the candidate that fails as often.
  CHECK(judge_step(spec, 10, figures(100, 5, 3), figures(900, 45, 3)).what == step_judgement::within);
  // One point above is within a bound of 0.01; two are not.
  CHECK(judge_step(spec, 10, figures(100, 1, 3), figures(1000, 0, 3)).what == step_judgement::within);
  CHECK(judge_step(spec, 10, figures(100, 2, 3), figures(1000, 0, 3)).what == step_judgement::breach);
}

TEST_CASE("canary judge: p99 above both the ratio and the slack is a breach", "[canary]") {
  auto spec = spec_of({10}, 30, 10);  // ratio 1.5, slack 20 ms
  // Fast apps: 3 ms → 9 ms is three times, but only 6 ms more: within the slack.
  CHECK(judge_step(spec, 10, figures(10, 0, 9), figures(90, 0, 3)).what == step_judgement::within);
  CHECK(judge_step(spec, 10, figures(10, 0, 23), figures(90, 0, 3)).what == step_judgement::within);
  CHECK(judge_step(spec, 10, figures(10, 0, 24), figures(90, 0, 3)).what == step_judgement::breach);
  // Slow apps: the ratio decides (200 ms × 1.5 = 300 ms).
  CHECK(judge_step(spec, 10, figures(10, 0, 300), figures(90, 0, 200)).what == step_judgement::within);
  auto slow = judge_step(spec, 10, figures(10, 0, 310), figures(90, 0, 200));
  CHECK(slow.what == step_judgement::breach);
  CHECK(slow.reason.find("p99 310 ms") != std::string::npos);
  // No serving traffic at all: nothing to compare the latency with.
  CHECK(judge_step(spec, 10, figures(10, 0, 5000), figures(0, 0, -1)).what == step_judgement::within);
}

TEST_CASE("canary judge: a candidate that finishes far fewer requests than its share is a breach", "[canary]") {
  auto spec = spec_of({10}, 30, 100);
  // 10 %: 1,800 serving requests should bring the candidate about 200.
  auto hanging = judge_step(spec, 10, figures(40, 0, 3), figures(1800, 0, 3));
  CHECK(hanging.what == step_judgement::breach);
  CHECK(hanging.reason.find("hanging") != std::string::npos);
  CHECK(judge_step(spec, 10, figures(150, 0, 3), figures(1800, 0, 3)).what == step_judgement::within);
  // Too early to tell (the expected count is under min_requests), and never for sticky clients.
  CHECK(judge_step(spec, 10, figures(0, 0, -1), figures(500, 0, 3)).what == step_judgement::too_few);
  spec.sticky = true;
  CHECK(judge_step(spec, 10, figures(40, 0, 3), figures(1800, 0, 3)).what == step_judgement::too_few);
}

TEST_CASE("canary judge: a large p99 slack lets any latency through", "[canary]") {
  auto spec = spec_of({10}, 30, 10);
  spec.p99_slack_ms = 60000;
  CHECK(judge_step(spec, 10, figures(10, 0, 900), figures(90, 0, 3)).what == step_judgement::within);
}

namespace {

// A fixture whose deploys run a canary over a serving v1 through the (fake) proxy.
struct canary_fixture : pipeline_fixture {
  std::shared_ptr<traffic_meter> owned;
  instance_ref serving;

  canary_fixture() {
    REQUIRE(traffic_meter::open((tmp.path / "traffic.sock").string(), &owned));
    meter = owned.get();
    auto in = inputs({"v1"});
    in.proxy = true;
    auto h = host();
    REQUIRE(run(*h, in) == phase::completed);
    auto data = h->first(ev::release_activated);
    REQUIRE(data);
    serving = instance_from(*data);
  }

  deploy_inputs canary_inputs(const std::string& version, canary_spec c) {
    auto in = inputs({version});
    in.proxy = true;
    in.drain = 100ms;
    in.canary_unavailable.clear();
    in.spec.canary = std::move(c);
    return in;
  }
};

}  // namespace

TEST_CASE_METHOD(canary_fixture, "canary phase: a good candidate goes through every step, then the switch",
                 "[canary]") {
  auto in = canary_inputs("v2", spec_of({10, 50}, 1, 5));
  auto h = host();
  uint16_t candidate = 0;
  std::unique_ptr<feeder> feed;
  h->on_event = [&](const new_event& e) {  // the candidate's port is known once it starts
    if (e.type != event_type(phase::canary) || feed) return;
    candidate = h->leased().back();
    feed.reset(new feeder{*meter, candidate, serving.port});
    feed->start();
  };
  REQUIRE(run(*h, in) == phase::completed);
  REQUIRE(candidate != 0);
  CHECK(splits(*h) == std::vector<std::string>{"split " + std::to_string(candidate) + " 10",
                                               "split " + std::to_string(candidate) + " 50",
                                               "route " + std::to_string(candidate)});
  CHECK(verdicts(*h) == std::vector<std::string>{"watching", "passed", "watching", "passed", "promoted"});
  auto canary = h->deployment().resources.at("canary");
  CHECK(canary.value("verdict", "") == "promoted");
  CHECK(canary.at("candidate").value("requests", 0) >= 5);
  CHECK(canary.at("serving").value("requests", 0) >= 5);
  CHECK(h->phases() == std::vector<std::string>{"preparing", "building", "packaging", "starting", "health_checking",
                                                "canary", "switching", "draining", "completed"});
  CHECK_FALSE(h->progress().empty());
}

TEST_CASE_METHOD(canary_fixture, "canary phase: a breach reverts at once and fails the deploy with both sides' figures",
                 "[canary]") {
  auto in = canary_inputs("v2", spec_of({10, 50}, 60, 20));
  auto h = host();
  uint16_t candidate = 0;
  std::unique_ptr<feeder> feed;
  h->on_event = [&](const new_event& e) {
    if (e.type != event_type(phase::canary) || feed) return;
    candidate = h->leased().back();
    feed.reset(new feeder{*meter, candidate, serving.port, 5});  // 20 % errors
    feed->start();
  };
  auto t0 = std::chrono::steady_clock::now();
  REQUIRE(run(*h, in) == phase::failed);
  CHECK(std::chrono::steady_clock::now() - t0 < 50s);  // at the breach, not at the interval's end
  auto d = h->deployment();
  CHECK(d.error.code == "canary_failed");
  CHECK(d.error.phase == "canary");
  CHECK(d.error.message.find("candidate") != std::string::npos);
  CHECK(d.error.message.find("serving") != std::string::npos);
  CHECK(splits(*h) == std::vector<std::string>{"split " + std::to_string(candidate) + " 10", "split 0 0", "split 0 0"});
  CHECK(verdicts(*h).back() == "failed");
  CHECK(d.resources.at("canary").value("step", 0) == 1);
  CHECK(d.resources.contains("canary_revert_ms"));
  // The candidate is stopped and its port given back; v1 still serves.
  CHECK(running() == std::vector<instance_ref>{serving});
  CHECK(h->released() == std::vector<uint16_t>{candidate});
  CHECK(meter->read(candidate).requests == 0);  // forgotten
}

TEST_CASE_METHOD(canary_fixture, "canary phase: too little traffic fails or promotes as on_no_traffic says",
                 "[canary]") {
  auto c = spec_of({10}, 1, 50);
  c.on_no_traffic = "fail";
  auto h = host();
  REQUIRE(run(*h, canary_inputs("v2", c)) == phase::failed);
  CHECK(h->deployment().error.code == "canary_failed");
  CHECK(h->deployment().error.message.find("too little traffic") != std::string::npos);

  c.on_no_traffic = "promote";
  auto h2 = host();
  REQUIRE(run(*h2, canary_inputs("v3", c)) == phase::completed);
  CHECK(verdicts(*h2) == std::vector<std::string>{"watching", "passed", "promoted"});
}

TEST_CASE_METHOD(canary_fixture, "canary phase: a person's promote and abort decide at once", "[canary]") {
  auto c = spec_of({10, 50}, 600, 1000);
  {
    auto h = host();
    h->on_event = [&](const new_event& e) {
      if (e.type == event_type(phase::canary)) h->request_verdict(canary_verdict::promote);
    };
    REQUIRE(run(*h, canary_inputs("v2", c)) == phase::completed);
    CHECK(verdicts(*h) == std::vector<std::string>{"watching", "promoted"});
  }
  {
    auto h = host();
    h->on_event = [&](const new_event& e) {
      if (e.type == event_type(phase::canary)) h->request_verdict(canary_verdict::abort);
    };
    REQUIRE(run(*h, canary_inputs("v3", c)) == phase::failed);
    CHECK(h->deployment().error.code == "canary_aborted");
    CHECK(verdicts(*h).back() == "aborted");
  }
}

TEST_CASE_METHOD(canary_fixture, "canary phase: a cancel reverts the split and stops the candidate", "[canary]") {
  auto h = host();
  h->on_event = [&](const new_event& e) {
    if (e.type == event_type(phase::canary)) h->request_stop(stop_request::cancel);
  };
  REQUIRE(run(*h, canary_inputs("v2", spec_of({10}, 600, 1000))) == phase::cancelled);
  auto ops = splits(*h);
  REQUIRE_FALSE(ops.empty());
  CHECK(ops.back() == "split 0 0");
  CHECK(running() == std::vector<instance_ref>{serving});
}

TEST_CASE_METHOD(canary_fixture, "canary phase: without the proxy's meter the deploy fails before any split",
                 "[canary]") {
  auto in = canary_inputs("v2", spec_of({10}, 1, 1));
  in.canary_unavailable = "production.canary needs HAProxy as the proxy engine";
  auto h = host();
  REQUIRE(run(*h, in) == phase::failed);
  CHECK(h->deployment().error.code == "canary_unavailable");
  CHECK(splits(*h).empty());
  CHECK(running() == std::vector<instance_ref>{serving});
}

TEST_CASE_METHOD(canary_fixture, "canary phase: a rollback goes back at once, without a canary", "[canary]") {
  auto first = production.current;
  auto h = host();
  REQUIRE(run(*h, canary_inputs("v2", spec_of({10}, 1, 1000))) == phase::completed);  // on_no_traffic: promote
  auto back = rollback_to(first);
  back.proxy = true;
  back.drain = 100ms;
  back.spec.canary = spec_of({10}, 600, 1000);
  auto r = host();
  REQUIRE(run(*r, back) == phase::completed);
  CHECK(verdicts(*r).empty());
}
