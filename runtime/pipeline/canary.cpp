// The canary phase (job.hpp run_canary) and its judge (canary.hpp). Every step: a new window
// of figures for both sides, the split at steps[i] %, then a look every 200 ms at what the
// proxy measured, until the step's interval is over, a bound breaks, or a person decides.
#include "runtime/pipeline/canary.hpp"

#include <algorithm>
#include <thread>

#include <fmt/format.h>

#include "runtime/pipeline/job.hpp"
#include "runtime/proxy/traffic_meter.hpp"

namespace berth {

namespace {

std::string figures_of(const char* who, const side_figures& f) {
  return fmt::format("{} {} requests, {} errors ({:.1f} %), p99 {}", who, f.requests, f.errors,
                     100.0 * f.error_rate(), f.p99_ms < 0 ? std::string("-") : std::to_string(f.p99_ms) + " ms");
}

}  // namespace

std::string describe(const side_figures& candidate, const side_figures& serving) {
  return figures_of("candidate", candidate) + "; " + figures_of("serving", serving);
}

judgement judge_step(const canary_spec& spec, int percent, const side_figures& candidate, const side_figures& serving) {
  if (!spec.sticky && percent > 0 && percent < 100) {
    double expected = double(serving.requests) * percent / (100.0 - percent);
    if (expected >= spec.min_requests && double(candidate.requests) < expected / 4)
      return {step_judgement::breach,
              fmt::format("the candidate finished {} requests where its {} % share should have brought about {:.0f} "
                          "(requests hanging or refused): {}",
                          candidate.requests, percent, expected, describe(candidate, serving))};
  }
  if (candidate.requests < static_cast<uint64_t>(spec.min_requests))
    return {step_judgement::too_few,
            fmt::format("{} of {} requests so far: {}", candidate.requests, spec.min_requests,
                        describe(candidate, serving))};
  double errors_over = candidate.error_rate() - serving.error_rate();
  if (errors_over > spec.max_error_rate)
    return {step_judgement::breach,
            fmt::format("error rate {:.1f} % is {:.1f} points above the serving release's (bound {:.1f}): {}",
                        100.0 * candidate.error_rate(), 100.0 * errors_over, 100.0 * spec.max_error_rate,
                        describe(candidate, serving))};
  if (candidate.p99_ms >= 0 && serving.p99_ms >= 0) {
    auto bound = std::max(static_cast<double>(serving.p99_ms) * spec.max_p99_ratio,
                          static_cast<double>(serving.p99_ms + spec.p99_slack_ms));
    if (static_cast<double>(candidate.p99_ms) > bound)
      return {step_judgement::breach, fmt::format("p99 {} ms is above the bound of {:.0f} ms (serving p99 {} ms × "
                                                  "{:g}, or + {} ms): {}",
                                                  candidate.p99_ms, bound, serving.p99_ms, spec.max_p99_ratio,
                                                  spec.p99_slack_ms, describe(candidate, serving))};
  }
  return {step_judgement::within, describe(candidate, serving)};
}

namespace pipeline {

namespace {

using namespace std::chrono_literals;

constexpr auto look_every = 200ms;
constexpr auto tell_every = 1s;  // live figures for those watching

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// One canary_step event with the figures (rides in the next durable batch), and the live view.
void tell(job& j, const canary_status& s) {
  auto data = to_json(s);
  data["id"] = j.in.id;
  j.add_event(ev::canary_step, data);
  // A step's start is synced: after a crash mid-canary the audit log still says which share of
  // requests went to the candidate, and since when.
  if (s.verdict == "watching") j.record({}, /*durable=*/true);
  j.resources["canary"] = to_json(s);
  j.host.canary_progress(s);
  j.log().line(fmt::format("canary step {}/{} at {} %: {}{}", s.step, s.steps, s.percent, s.verdict,
                           s.reason.empty() ? "" : " - " + s.reason));
}

// Every request back to the serving release; how long the proxy took to take it (ms).
int64_t revert(job& j) {
  auto t0 = clock_type::now();
  if (auto s = j.host.set_split({}); !s) j.log().line("error: the proxy did not end the split: " + s.message());
  return ms_since(t0);
}

// The canary ends here: every request back at once, the verdict recorded, the deploy failed
// with `code` (its undo stops the candidate).
[[noreturn]] void end_reverted(job& j, canary_status& s, const char* verdict, const std::string& reason,
                               const char* code) {
  auto percent = s.percent;
  j.resources["canary_revert_ms"] = revert(j);
  s.percent = 0;
  s.verdict = verdict;
  s.reason = reason;
  tell(j, s);
  j.fail(code, fmt::format("canary step {}/{} at {} %: {}", s.step, s.steps, percent, reason));
}

}  // namespace

bool wants_canary(const job& j, const serving_release& old) {
  return j.in.spec.canary.enabled() && j.in.kind == job_kind::deploy && j.in.proxy && !old.instance.empty() &&
         old.instance.port != j.in.stable_port;
}

void run_canary(job& j, const instance_ref& candidate, const serving_release& old) {
  const auto& spec = j.in.spec.canary;
  if (!j.in.canary_unavailable.empty() || j.tools.meter == nullptr)
    j.fail("canary_unavailable", j.in.canary_unavailable.empty() ? "the proxy's traffic meter is not running"
                                                                 : j.in.canary_unavailable);
  auto& meter = *j.tools.meter;
  const std::vector<uint16_t> ports{candidate.port, old.instance.port};
  j.undo.push("send every request to the serving release again", [&j, &meter, ports] {
    revert(j);
    meter.forget(ports);
  });
  canary_status s;
  s.steps = static_cast<int>(spec.steps.size());
  for (size_t i = 0; i < spec.steps.size(); ++i) {
    s.step = static_cast<int>(i) + 1;
    s.percent = spec.steps[i];
    s.candidate = s.serving = side_figures{};
    s.verdict = "watching";
    s.reason.clear();
    meter.restart(ports);
    if (auto st = j.host.set_split({candidate.port, static_cast<uint8_t>(s.percent), spec.sticky}); !st)
      j.fail("switch_failed", "the proxy did not take the canary's split: " + st.message());
    auto ends = clock_type::now() + std::chrono::seconds(spec.interval_s);
    s.step_started_us = now_us();
    s.step_ends_us = s.step_started_us + int64_t(spec.interval_s) * 1000000;
    tell(j, s);
    judgement verdict;
    auto told = clock_type::now();
    while (true) {
      s.candidate = meter.read(candidate.port);
      s.serving = meter.read(old.instance.port);
      verdict = judge_step(spec, s.percent, s.candidate, s.serving);
      if (verdict.what == step_judgement::breach) end_reverted(j, s, "failed", verdict.reason, "canary_failed");
      auto decided = j.host.operator_verdict();
      if (decided == canary_verdict::abort)
        end_reverted(j, s, "aborted", "aborted by request: " + describe(s.candidate, s.serving), "canary_aborted");
      if (decided == canary_verdict::promote) {
        s.verdict = "promoted";
        s.reason = "promoted by request: " + describe(s.candidate, s.serving);
        tell(j, s);
        meter.forget(ports);
        return;
      }
      if (j.give_up()) j.gave_up();  // cancel, shutdown or the phase's limit: the undo reverts
      if (clock_type::now() >= ends) break;
      if (clock_type::now() - told >= tell_every) {
        j.host.canary_progress(s);
        told = clock_type::now();
      }
      std::this_thread::sleep_for(std::min<clock_type::duration>(look_every, ends - clock_type::now()));
    }
    if (verdict.what == step_judgement::too_few && spec.on_no_traffic == "fail")
      end_reverted(j, s, "failed", "too little traffic to judge (on_no_traffic: fail): " + verdict.reason,
                   "canary_failed");
    s.verdict = "passed";
    s.reason = verdict.what == step_judgement::too_few
                   ? "too little traffic to judge (on_no_traffic: promote): " + verdict.reason
                   : verdict.reason;
    tell(j, s);
  }
  s.verdict = "promoted";
  s.reason = fmt::format("all {} steps passed", s.steps);
  tell(j, s);
  meter.forget(ports);  // the switch that follows ends the split (set_route)
}

}  // namespace pipeline
}  // namespace berth
