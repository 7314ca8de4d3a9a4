// The canary's judge: one step's figures, the candidate against the serving release, as the
// proxy measured both (runtime/proxy/traffic_meter.hpp). Pure; the phase that acts on it is
// run_canary (job.hpp, canary.cpp).
//
// The bounds (README "Canary releases"):
//   errors   the candidate's error rate exceeds the serving release's by more than max_error_rate
//   latency  the candidate's p99 exceeds max(serving p99 × max_p99_ratio, serving p99 + p99_slack_ms)
//   share    (not sticky) the candidate finished fewer than a quarter of the requests its percent
//            should have brought it, once that expected count reaches min_requests: HAProxy logs a
//            request when it ends, so a candidate whose requests hang would otherwise never be judged
// A step needs min_requests answered by the candidate before the error and latency bounds can
// pass or fail it.
#pragma once
#include <string>

#include "messages/deployment.hpp"
#include "messages/manifest.hpp"

namespace berth {

enum class step_judgement {
  too_few,  // the candidate has not had min_requests yet: no verdict
  within,   // enough requests, both bounds hold
  breach,   // enough requests, a bound is broken (reason says which, with the figures)
};

struct judgement {
  step_judgement what = step_judgement::too_few;
  std::string reason;  // in words, with both sides' figures
};

// `percent`: the step's share of requests sent to the candidate.
judgement judge_step(const canary_spec& spec, int percent, const side_figures& candidate, const side_figures& serving);

// "candidate 120 requests, 24 errors (20.0 %), p99 12 ms; serving 1,080 requests, 0 errors (0.0 %), p99 3 ms"
std::string describe(const side_figures& candidate, const side_figures& serving);

}  // namespace berth
