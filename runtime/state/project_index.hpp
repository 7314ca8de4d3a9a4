// The read model of every project: the folds of every project stream (messages/replay.hpp),
// loaded at start (runtime/eventlog/replay_load.hpp) and kept current by the event_store, which
// applies each durably committed batch before it answers the appenders (a client that got its
// answer reads its own write). Thread-safe: HTTP threads and actors read while the store writes.
// It answers what a project whose nothing runs looks like (a dormant project has no actor), the
// paginated list, and what the projects supervisor needs at start, without asking any actor.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include <caf/allowed_unsafe_message_type.hpp>

#include "config/urls.hpp"
#include "messages/replay.hpp"
#include "messages/views.hpp"
#include "runtime/eventlog/event_log.hpp"
#include "runtime/resilience/restart_policy.hpp"

namespace berth {

// What a status view needs besides the folds (the same inputs the environments' actors use).
struct index_view_settings {
  site_address site;
  std::string data_dir;
  restart_policy restart;  // the keeper's: how many recent exits a preview view counts
};

// What the projects supervisor needs of one live project at start.
struct indexed_project {
  std::string name;
  uint32_t sandbox_uid = 0;          // 0: none recorded
  std::vector<std::string> domains;  // its manifest's custom domains
  bool unreadable = false;           // its stream could not be decoded: parked as broken
  bool needs_actor = false;          // something runs or must be reconciled (see needs_actor())
};

struct project_page {
  std::vector<project_view> projects;  // sorted by name, without environments
  std::string next_cursor;             // "" = this was the last page
};

// Whether a project must have its actor: production running (or to be restarted), a
// deployment queued or running (its start-up reconciliation runs or marks it interrupted), or
// the preview running (or to be restarted). Everything else is dormant.
bool needs_actor(const project_state& s);

class project_index {
 public:
  explicit project_index(index_view_settings settings);
  // Stops the snapshot worker (a snapshot being written is finished first).
  ~project_index();

  // Fills the index from `log` (load_replay; when the log cannot be folded as a whole, stream
  // by stream, and the projects whose stream cannot be read are marked unreadable).
  // Errors: none; what cannot be read is logged. Call once, before the event_store runs.
  void load(const std::shared_ptr<event_log>& log);

  // Folds a durably committed batch (in log order). Called by the event_store only.
  // Deleted projects are dropped; may hand a snapshot to the worker (see set_snapshot_every).
  void apply(const std::vector<event_record>& batch);

  // The project as its folds say, with both environments (what its actor would answer for
  // that state when nothing runs). nullopt: no such live project, or its stream is unreadable.
  std::optional<project_view> view(const std::string& name) const;

  // Up to `limit` live projects with names > `cursor` ("" = from the start), by name.
  project_page page(const std::string& cursor, size_t limit) const;

  // Every live project (and every unreadable one), for the supervisor's start.
  std::vector<indexed_project> projects() const;

  // The project's whole-stream figures (last seq, events since creation), for views built
  // by its actor; false when it is not in the index.
  bool stream_figures(const std::string& name, uint64_t& last_seq, uint64_t& events) const;

  // Every `every` events folded (0: never), a copy of the folds goes to save_replay_snapshot
  // on the index's own worker thread, never on the caller's.
  void set_snapshot_every(uint64_t every);
  // Writes a snapshot of the folds now, on the calling thread (clean shutdown); false with
  // the reason logged when it cannot.
  bool snapshot_now();

  // Live projects in the index.
  size_t size() const;

 private:
  void snapshot_worker();
  bool write_snapshot(const log_replay& copy, uint64_t seq, const std::string& hash);

  index_view_settings settings_;
  std::shared_ptr<event_log> log_;
  mutable std::shared_mutex mutex_;
  log_replay folds_;                 // live projects only, and the port table
  std::set<std::string> unreadable_;
  uint64_t last_seq_ = 0;
  std::string last_hash_;

  // Snapshot cadence and worker.
  uint64_t every_ = 0, since_snapshot_ = 0;
  std::mutex worker_mutex_, write_mutex_;
  std::condition_variable wake_;
  bool due_ = false, stopping_ = false;
  std::thread worker_;
};

}  // namespace berth

// Travels between local actors only (the projects supervisor answers the list with it).
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(berth::project_page)
