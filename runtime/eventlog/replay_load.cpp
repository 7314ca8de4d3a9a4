#include "runtime/eventlog/replay_load.hpp"

namespace berth {

// First version: no snapshot yet, every event folded.
status load_replay(const event_log& log, log_replay* out, replay_load_stats* stats) {
  *out = log_replay{};
  uint64_t n = 0;
  auto s = log.scan(1, [&](const event_record& e) {
    out->fold(e);
    ++n;
    return true;
  });
  if (stats) *stats = {0, n, ""};
  return s;
}

status save_replay_snapshot(event_log&, const log_replay&, uint64_t, const std::string&) {
  return status::io_error("replay snapshots are not written yet");
}

}  // namespace berth
