// The append-only, hash-chained event log on RocksDB. No actor code: the event_store
// actor is its single writer; `berth audit` opens it read-only next to a running server.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "messages/event.hpp"
#include "runtime/status.hpp"

namespace berth {

struct verify_result {
  bool ok = true;
  uint64_t checked = 0;     // events walked
  uint64_t first_bad = 0;   // seq of the first broken event (0 when ok)
  std::string reason;       // what is wrong with it
};

class event_log {
 public:
  enum class mode { read_write, read_only };

  // read_only opens as a RocksDB secondary instance, so it works while a server holds the
  // primary; it sees everything the server has committed at open time.
  static status open(const std::string& dir, mode m, std::unique_ptr<event_log>* out);

  virtual ~event_log() = default;

  // Appends all events in one WriteBatch (atomic; synced when `sync`), assigning seq, time and
  // the hash chain. On success `out` receives the stored records in order.
  virtual status append(const std::vector<new_event>& events, bool sync,
                        std::vector<event_record>* out) = 0;

  // Events of one stream with seq >= from, at most `limit` (0 = no limit), in order.
  virtual status read_stream(const std::string& stream, uint64_t from, uint64_t limit,
                             std::vector<event_record>* out) const = 0;
  // The newest event of a stream; not_found if the stream is empty.
  virtual status last_of_stream(const std::string& stream, event_record* out) const = 0;
  // Every event with seq >= from in global order; `fn` returns false to stop.
  virtual status scan(uint64_t from, const std::function<bool(const event_record&)>& fn) const = 0;
  // Names of streams starting with `prefix`, sorted.
  virtual std::vector<std::string> streams(const std::string& prefix) const = 0;

  virtual uint64_t last_seq() const = 0;
  // Bytes the log takes on disk now (live table files and write-ahead log); cheap, thread-safe.
  // 0 when unknown.
  virtual uint64_t disk_bytes() const { return 0; }
  // Walks the whole chain: recomputes each hash, checks links, seq continuity and the indexes.
  virtual verify_result verify() const = 0;

  // Replay snapshots (runtime/eventlog/replay_load.hpp), kept beside the events under keys no
  // read above ever sees. Stores `bytes` as the snapshot at `seq`, drops all but the newest
  // `keep`. Errors: a write failure, a read-only log. Thread-safe beside appends.
  virtual status put_snapshot(uint64_t seq, const std::string& bytes, size_t keep);
  // The seqs of the stored snapshots, newest first (empty when none or unreadable).
  virtual std::vector<uint64_t> snapshot_seqs() const;
  // The snapshot stored at `seq`. Errors: not_found, a read failure.
  virtual status get_snapshot(uint64_t seq, std::string* out) const;
};

// Checks one event before it is appended: stream and type pass valid_stream_name and are
// UTF-8, data is empty or a valid JSON text. append() runs the same check; the event_store
// runs it per request before grouping, so one bad request fails alone.
status validate_event(const new_event& e);

// SHA-256 of `bytes` as 64 lowercase hex chars (OpenSSL).
std::string sha256_hex(const std::string& bytes);
// The hash an event must carry given its fields and prev_hash.
std::string event_hash(const event_record& e);

}  // namespace berth
