// The folds of the event log up to an instant, shared by `berth audit replay --until` and
// GET /api/projects/{name}/state?at=, so the CLI and the API cannot disagree. Pure functions.
#pragma once
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "messages/event.hpp"
#include "messages/project_state.hpp"

namespace berth {

// Every project stream and the port leases, folded in log order up to `until_us`.
struct log_replay {
  int64_t until_us = std::numeric_limits<int64_t>::max();
  std::map<std::string, project_state> projects;  // by name (the stream's suffix)
  port_table ports;

  // Folds `e` (events come in log order) when its time is <= until_us and returns true;
  // returns false and folds nothing for a later event. Other streams are ignored.
  bool fold(const event_record& e);
};

// Two streams' events (each in log order) merged into log order, by seq.
std::vector<event_record> merge_by_seq(const std::vector<event_record>& a, const std::vector<event_record>& b);

// One project at an instant, folded by log_replay from the events of its stream.
struct project_at {
  project_state state;     // state.exists false: no incarnation of the name was alive then
  int64_t deleted_us = 0;  // when the incarnation alive then was deleted afterwards (0: not yet)
};
// `stream` is all of project/<name>'s events in order; events after `at_us` only tell when
// the incarnation alive at `at_us` ended.
project_at project_state_at(const std::string& name, const std::vector<event_record>& stream, int64_t at_us);

}  // namespace berth
