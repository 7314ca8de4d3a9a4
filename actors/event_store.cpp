#include "actors/event_store.hpp"

#include <algorithm>
#include <chrono>
#include <iterator>
#include <limits>
#include <string>
#include <utility>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "messages/atoms.hpp"
#include "messages/errors.hpp"

namespace berth {

namespace {

using store_ptr = caf::stateful_actor<event_store_state>*;

caf::error to_error(const status& st) {
  auto code = st.which() == status::code::invalid_argument ? errc::invalid_request
               : st.which() == status::code::no_space       ? errc::insufficient_storage
                                                             : errc::storage_error;
  return make_error(code, st.message());
}

// Runs the blocking, synced write. Spawned detached: it owns a thread, so the fsync never
// occupies a CAF scheduler thread.
caf::behavior committer(caf::event_based_actor*, std::shared_ptr<event_log> log) {
  return {
      [log](append_atom, std::vector<new_event>& events, bool sync)
          -> caf::result<std::vector<event_record>> {
        std::vector<event_record> out;
        auto st = log->append(events, sync, &out);
        if (!st) return to_error(st);
        return out;
      },
  };
}

void fail_all(std::vector<event_store_state::pending_append>& group, const caf::error& err) {
  for (auto& p : group)
    if (p.promise.pending()) p.promise.deliver(err);
  group.clear();
}

void commit_finished(store_ptr self, size_t group_requests);

// Appends a signed checkpoint of the head when the log has grown enough (see the header).
void checkpoint_if_due(store_ptr self) {
  new_event e;
  auto& cp = self->state.checkpointer;
  if (!cp || !cp->due(*self->state.log, &e)) return;
  self->request(caf::actor_cast<caf::actor>(self), caf::infinite, append_unsynced_atom_v,
                std::vector<new_event>{std::move(e)})
      .then([](std::vector<event_record>&) {},
            [self](caf::error& err) {
              spdlog::warn("event log: the audit checkpoint was not appended: {}", self->system().render(err));
            });
}

// Sends everything that accumulated as one group to the committer, unless a commit is
// already in flight (then it goes when that one finishes) or the store lingers for more.
void start_commit(store_ptr self) {
  auto& st = self->state;
  if (st.committing || st.waiting.empty()) return;
  // Lingering gathers synced appends into one fsync; unsynced ones cost no fsync: they go now.
  bool any_sync = std::any_of(st.waiting.begin(), st.waiting.end(), [](auto& p) { return p.sync; });
  if (st.lingering && any_sync && st.waiting.size() < st.expected_requests) return;
  st.lingering = false;
  ++st.linger_gen;
  st.committing = true;
  st.commit_started = std::chrono::steady_clock::now();
  st.in_flight.swap(st.waiting);  // in_flight was empty, so waiting is empty now
  size_t total = 0;
  bool sync = false;  // one synced write makes every earlier one durable too
  for (auto& p : st.in_flight) {
    total += p.events.size();
    sync = sync || p.sync;
  }
  std::vector<new_event> all;
  all.reserve(total);
  for (auto& p : st.in_flight) {
    // Moving the elements keeps p.events.size(), which is all we need afterwards.
    for (auto& e : p.events) all.push_back(std::move(e));
  }
  self->request(st.committer, caf::infinite, append_atom_v, std::move(all), sync)
      .then(
          [self, total, sync](std::vector<event_record>& records) {
            auto& st = self->state;
            auto group_requests = st.in_flight.size();
            if (records.size() != total) {
              fail_all(st.in_flight,
                       make_error(errc::internal, "commit returned an unexpected record count"));
            } else {
              ++st.commits;
              st.appended += records.size();
              if (st.metrics) st.metrics->committed(records.size(), sync);
              if (st.on_commit) st.on_commit(records);
              auto it = records.begin();
              for (auto& p : st.in_flight) {
                auto n = static_cast<std::ptrdiff_t>(p.events.size());
                std::vector<event_record> part(std::make_move_iterator(it),
                                               std::make_move_iterator(it + n));
                it += n;
                p.promise.deliver(std::move(part));
              }
              st.in_flight.clear();
              checkpoint_if_due(self);
            }
            commit_finished(self, group_requests);
          },
          [self](caf::error& err) {
            auto& st = self->state;
            auto group_requests = st.in_flight.size();
            if (err.category() != caf::atom("berth"))
              err = make_error(errc::storage_error, "commit failed: " + self->system().render(err));
            fail_all(st.in_flight, err);
            commit_finished(self, group_requests);
          });
}

void commit_finished(store_ptr self, size_t group_requests) {
  using namespace std::chrono;
  auto& st = self->state;
  st.committing = false;
  st.last_commit = duration_cast<microseconds>(steady_clock::now() - st.commit_started);
  auto concurrency = group_requests + st.waiting.size();
  auto linger = std::min(st.max_linger, st.last_commit / 4);
  if (concurrency >= 2 && linger.count() > 0) {
    st.lingering = true;
    st.expected_requests = concurrency;
    self->delayed_send(self, linger, committed_atom_v, ++st.linger_gen);
  }
  start_commit(self);
}

// Validates a request (a bad one fails alone, before grouping) and queues it for the next commit.
caf::result<std::vector<event_record>> enqueue(store_ptr self, std::vector<new_event> events, bool sync) {
  for (size_t i = 0; i < events.size(); ++i) {
    auto st = validate_event(events[i]);
    if (!st) return make_error(errc::invalid_request, "event " + std::to_string(i) + ": " + st.message());
  }
  if (events.empty()) return std::vector<event_record>{};
  auto rp = self->make_response_promise();
  self->state.waiting.push_back({std::move(events), rp, sync});
  start_commit(self);
  return rp;
}

// event_store_with_linger that also appends signed checkpoints.
caf::behavior anchored_event_store(store_ptr self, std::shared_ptr<event_log> log, std::chrono::microseconds linger,
                                   std::shared_ptr<log_checkpointer> checkpointer) {
  self->state.checkpointer = std::move(checkpointer);
  return event_store_with_linger(self, std::move(log), linger);
}

}  // namespace

event_store_state::~event_store_state() {
  auto err = make_error(errc::unavailable, "event store stopped");
  fail_all(in_flight, err);
  fail_all(waiting, err);
}

caf::behavior event_store(store_ptr self, std::shared_ptr<event_log> log) {
  return event_store_with_linger(self, std::move(log), event_store_state::default_max_linger);
}

caf::behavior event_store_with_linger(store_ptr self, std::shared_ptr<event_log> log,
                                      std::chrono::microseconds max_linger) {
  self->state.log = log;
  self->state.max_linger = max_linger;
  self->state.committer = self->spawn<caf::detached + caf::linked>(committer, log);
  return {
      [self](append_atom, std::vector<new_event>& events) { return enqueue(self, std::move(events), true); },
      [self](append_unsynced_atom, std::vector<new_event>& events) {
        return enqueue(self, std::move(events), false);
      },
      [self](committed_atom, uint64_t gen) {
        // End of a linger period: commit whatever is waiting.
        auto& st = self->state;
        if (!st.lingering || gen != st.linger_gen) return;
        st.lingering = false;
        start_commit(self);
      },
      [self](read_stream_atom, const std::string& stream, uint64_t from,
             uint64_t limit) -> caf::result<std::vector<event_record>> {
        std::vector<event_record> out;
        auto st = self->state.log->read_stream(stream, from, limit, &out);
        if (!st) return to_error(st);
        return out;
      },
      [self](last_event_atom, const std::string& stream)
          -> caf::result<std::vector<event_record>> {
        std::vector<event_record> out;
        event_record r;
        auto st = self->state.log->last_of_stream(stream, &r);
        if (st) {
          out.push_back(std::move(r));
        } else if (st.which() != status::code::not_found) {
          return to_error(st);
        }
        return out;
      },
      [self](read_all_atom, uint64_t from,
             uint64_t limit) -> caf::result<std::vector<event_record>> {
        if (limit == 0) limit = std::numeric_limits<uint64_t>::max();
        std::vector<event_record> out;
        auto st = self->state.log->scan(from, [&](const event_record& r) {
          out.push_back(r);
          return out.size() < limit;
        });
        if (!st) return to_error(st);
        return out;
      },
      [self](list_streams_atom, const std::string& prefix) {
        return self->state.log->streams(prefix);
      },
      [self](stats_atom) {
        auto& st = self->state;
        return log_stats{st.log->last_seq(), st.commits, st.appended};
      },
  };
}

caf::actor spawn_event_store(caf::actor_system& sys, std::shared_ptr<event_log> log,
                             std::chrono::microseconds max_linger, std::shared_ptr<log_checkpointer> checkpointer,
                             std::shared_ptr<berth_metrics> metrics, commit_sink on_commit) {
  if (metrics || on_commit)
    return sys.spawn([=](store_ptr self) {
      self->state.metrics = metrics;
      self->state.on_commit = on_commit;
      return anchored_event_store(self, log, max_linger, checkpointer);
    });
  if (!checkpointer) return sys.spawn(event_store_with_linger, std::move(log), max_linger);
  return sys.spawn(anchored_event_store, std::move(log), max_linger, std::move(checkpointer));
}

}  // namespace berth
