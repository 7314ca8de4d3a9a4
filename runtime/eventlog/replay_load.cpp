// load_replay and save_replay_snapshot (replay_load.hpp): the newest snapshot that passes its
// check (the event at its seq carries the hash it names) plus the tail, or every event.
#include "runtime/eventlog/replay_load.hpp"

#include <rocksdb/slice.h>

#include "runtime/eventlog/replay_snapshot.hpp"

namespace berth {

namespace {

// Snapshots kept: the newest, and the one before it in case the newest cannot be used.
constexpr size_t kSnapshotsKept = 2;

}  // namespace

status load_replay(const event_log& log, log_replay* out, replay_load_stats* stats) {
  replay_load_stats st;
  *out = log_replay{};
  uint64_t from = 1;
  const uint64_t last = log.last_seq();
  for (uint64_t seq : log.snapshot_seqs()) {
    auto refuse = [&](const std::string& why) {
      if (st.snapshot_refused.empty()) st.snapshot_refused = "snapshot at " + std::to_string(seq) + ": " + why;
    };
    if (seq > last) {
      refuse("beyond the log's last event " + std::to_string(last));
      continue;
    }
    std::string bytes;
    if (auto s = log.get_snapshot(seq, &bytes); !s) {
      refuse(s.message());
      continue;
    }
    detail::snapshot_head head;
    std::string why;
    if (!detail::decode_replay_snapshot(rocksdb::Slice(bytes), *out, head, why)) {
      refuse(why);
      continue;
    }
    if (head.seq != seq) {
      refuse("it names seq " + std::to_string(head.seq));
      continue;
    }
    // The event at seq must carry the hash the snapshot names: the snapshot then folds this
    // very chain up to it.
    std::string found;
    auto s = log.scan(seq, [&](const event_record& e) {
      if (e.seq == seq) found = e.hash;
      return false;
    });
    if (!s) return s;
    if (found != head.hash) {
      refuse(found.empty() ? "its event is missing" : "the event at its seq carries another hash");
      continue;
    }
    st.snapshot_seq = seq;
    from = seq + 1;
    break;
  }
  if (st.snapshot_seq == 0) *out = log_replay{};  // a refused snapshot's half decode goes
  auto s = log.scan(from, [&](const event_record& e) {
    out->fold(e);
    ++st.tail_events;
    return true;
  });
  if (stats) *stats = std::move(st);
  return s;
}

status save_replay_snapshot(event_log& log, const log_replay& r, uint64_t seq, const std::string& hash) {
  auto bytes = detail::encode_replay_snapshot(r, {seq, hash});
  return log.put_snapshot(seq, bytes, kSnapshotsKept);
}

}  // namespace berth
