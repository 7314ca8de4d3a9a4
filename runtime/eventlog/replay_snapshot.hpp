// Internal to runtime/eventlog/: the encoding of a replay snapshot (every project_state of a
// log_replay and its port_table, up to one seq), written by save_replay_snapshot and read by
// load_replay (replay_load.hpp). Binary and versioned: a snapshot written by another version
// of this encoding is refused, never half read.
#pragma once
#include <rocksdb/slice.h>

#include <cstdint>
#include <string>

#include "messages/replay.hpp"

namespace berth::detail {

struct snapshot_head {
  uint64_t seq = 0;  // the folds cover every event up to and including this one
  std::string hash;  // that event's hash
};

// Encodes `r` (its until_us is not kept: a snapshot always covers everything up to seq).
std::string encode_replay_snapshot(const log_replay& r, const snapshot_head& head);

// Decodes a snapshot into `out` and `head`; on failure returns false with `why` set, and
// `out` is unspecified.
bool decode_replay_snapshot(const rocksdb::Slice& v, log_replay& out, snapshot_head& head, std::string& why);

// Reads only the head of a snapshot (cheap: its seq and hash come first).
bool decode_snapshot_head(const rocksdb::Slice& v, snapshot_head& head, std::string& why);

}  // namespace berth::detail
