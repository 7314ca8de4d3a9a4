// Preview environment vocabulary: what happened to a project's dev service. Persisted in the
// project's stream, so a restarted berth knows whether the preview should be running, which
// instance was its own, and how often it died lately (its crash-loop budget).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "messages/event.hpp"
#include "messages/instance.hpp"

namespace berth {

namespace ev {
constexpr const char* preview_started = "preview_started";  // instance {instance, pid, port}; cause
constexpr const char* preview_stopped = "preview_stopped";
constexpr const char* preview_exited = "preview_exited";    // {reason}: it died; restarted after a backoff
constexpr const char* preview_crashed = "preview_crashed";  // {reason}: a crash loop; not restarted
}  // namespace ev

// Why an instance was started: a person asked (start), the keeper brought it back after it
// died (restart), or a failed switch brought the previous release back (restored). Only a
// `start` gives a crash-looping instance a fresh budget.
namespace cause {
constexpr const char* start = "start";
constexpr const char* restart = "restart";
constexpr const char* restored = "restored";
}  // namespace cause

// The preview's desired and last known state, folded from its events.
struct preview_record {
  std::string status = "stopped";  // stopped | running | exited | crashed
  instance_ref process;            // valid while running
  std::string reason;              // why it exited or crashed
  std::vector<int64_t> exits_us;   // deaths since it was last started by request (the budget)
  uint64_t last_seq = 0;
  uint64_t events = 0;             // preview events folded
};

// Folds one event of the project's stream; ignores event types that are not the preview's.
void fold(preview_record& s, const event_record& e);

// The exits an instance's budget counts: `exits` plus this one, the oldest dropped beyond a
// bound (only the window's worth matters).
void note_exit(std::vector<int64_t>& exits, int64_t ts_us);
// Whether a `started` record with this cause ends the budget (a start by request does).
bool fresh_budget(const nlohmann::json& data);

}  // namespace berth
