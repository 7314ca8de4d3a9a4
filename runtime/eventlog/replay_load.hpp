// The folds of the whole log (every project stream and the port leases, messages/replay.hpp)
// rebuilt at start, and the snapshots that make that fast: a snapshot is the encoded
// log_replay up to one seq, stored beside the log and checked against the chain (the event
// at its seq must carry the hash it names) before it is trusted. No actor code.
#pragma once
#include <cstdint>
#include <string>

#include "messages/replay.hpp"
#include "runtime/eventlog/event_log.hpp"

namespace berth {

struct replay_load_stats {
  uint64_t snapshot_seq = 0;  // seq the snapshot used covers (0: none used)
  uint64_t tail_events = 0;   // events folded after it
  // Why the newest snapshot was not used ("" = none stored, or the newest was used); an older
  // one may still have been used (snapshot_seq says which).
  std::string snapshot_refused;
};

// Fills `out` (until_us = max) with the folds of every event of `log`: the newest snapshot
// that passes its check, then the events after it. Errors: a log that cannot be read.
// Thread-safe with respect to a concurrent writer (reads a RocksDB view).
status load_replay(const event_log& log, log_replay* out, replay_load_stats* stats = nullptr);

// Stores `r` (the folds of every event up to and including `seq`, whose hash is `hash`) as
// the newest snapshot; the two newest are kept. Errors: a write failure, a read-only log. Not
// thread-safe with itself (the caller serialises), safe beside appends and load_replay.
status save_replay_snapshot(event_log& log, const log_replay& r, uint64_t seq, const std::string& hash);

}  // namespace berth
