// The event_store actor: single writer of the RocksDB event log, with group commit.
//
// Messages (dynamic caf::actor; atoms in messages/atoms.hpp):
//   (append_atom, std::vector<new_event>)          -> std::vector<event_record>
//       replied only after the synced commit; errc::invalid_request when any event of the
//       request is invalid (nothing written), errc::storage_error when RocksDB fails.
//   (append_unsynced_atom, std::vector<new_event>) -> std::vector<event_record>
//       the same, written in order without an fsync of its own: it survives a crash of berth
//       (the WAL is in the kernel) and becomes durable with the next synced commit. For events
//       a restart does not decide from (a deploy's phase events).
//   (read_stream_atom, std::string stream, uint64_t from, uint64_t limit)
//                                                  -> std::vector<event_record>
//   (last_event_atom, std::string stream)          -> std::vector<event_record> (0 or 1)
//   (read_all_atom, uint64_t from, uint64_t limit) -> std::vector<event_record>
//   (list_streams_atom, std::string prefix)        -> std::vector<std::string>
//   (stats_atom)                                   -> log_stats
// A limit of 0 means "no limit". (committed_atom, uint64_t) is internal: the linger timer.
//
// Checkpoints: with a checkpointer, a commit after which the log has grown by N events since
// the last signed head is followed by an unsynced append of a `log_checkpoint` event (sent to
// itself, so it queues like any append). Nothing is appended while nobody writes.
//
// Commit sink: with one, every durably committed group (in log order, checkpoint events
// included) is handed to it before any appender of the group gets its answer, so a read
// model it feeds (runtime/state/project_index.hpp) already has what the appender wrote.
//
// Group commit: appends that arrive while a commit is in flight accumulate; when the commit
// finishes, everything accumulated goes to the log as ONE synced WriteBatch. The blocking
// write runs in a linked detached helper actor, never on a scheduler thread. Each request's
// events are contiguous in the log and atomic.
//
// Linger: when the finished group shows concurrency (2+ requests finished or waiting), the
// next commit waits until as many requests are queued as took part last time (the callers
// just answered usually come right back), or for at most min(max_linger, last commit / 4).
// Without it, closed-loop writers split into two alternating half-size groups. A lone
// writer never waits.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/behavior.hpp>
#include <caf/response_promise.hpp>
#include <caf/stateful_actor.hpp>

#include "messages/event.hpp"
#include "runtime/eventlog/audit_anchor.hpp"
#include "runtime/eventlog/event_log.hpp"
#include "runtime/metrics/berth_metrics.hpp"

namespace berth {

// Called with each committed group, on the store's thread: keep it short.
using commit_sink = std::function<void(const std::vector<event_record>&)>;

struct event_store_state {
  struct pending_append {
    std::vector<new_event> events;
    caf::response_promise promise;
    bool sync = true;
  };

  std::shared_ptr<event_log> log;
  caf::actor committer;                   // detached, linked; runs log->append(sync=true)
  std::vector<pending_append> waiting;    // accumulated while a commit is in flight
  std::vector<pending_append> in_flight;  // the group being committed
  bool committing = false;
  // Signs the log's head every N events (runtime/eventlog/audit_anchor.hpp); null: no anchoring.
  std::shared_ptr<log_checkpointer> checkpointer;
  uint64_t commits = 0;   // synced WriteBatches written
  uint64_t appended = 0;  // events appended
  std::shared_ptr<berth_metrics> metrics;  // commits and their sizes (null: not measured)
  commit_sink on_commit;                   // empty: nobody is told

  // Linger (see above).
  bool lingering = false;
  uint64_t linger_gen = 0;        // stale linger timers are ignored
  size_t expected_requests = 0;   // requests to wait for while lingering
  std::chrono::steady_clock::time_point commit_started;
  std::chrono::microseconds last_commit{0};
  static constexpr std::chrono::microseconds default_max_linger{500};
  std::chrono::microseconds max_linger{default_max_linger};

  // Fails every promise still open (the actor is going away).
  ~event_store_state();

  static inline const char* name = "event_store";
};

caf::behavior event_store(caf::stateful_actor<event_store_state>* self,
                          std::shared_ptr<event_log> log);

// Same behaviour with an explicit linger cap (0 disables lingering).
caf::behavior event_store_with_linger(caf::stateful_actor<event_store_state>* self,
                                      std::shared_ptr<event_log> log,
                                      std::chrono::microseconds max_linger);

caf::actor spawn_event_store(caf::actor_system& sys, std::shared_ptr<event_log> log,
                             std::chrono::microseconds max_linger =
                                 event_store_state::default_max_linger,
                             std::shared_ptr<log_checkpointer> checkpointer = nullptr,
                             std::shared_ptr<berth_metrics> metrics = nullptr, commit_sink on_commit = {});

}  // namespace berth
