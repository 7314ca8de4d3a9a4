// The root of berth's actor tree (DESIGN.md): root supervisor (one_for_one) over
// event_store, port_allocator and the projects supervisor. Each child registers its name
// when it starts, so a restarted child is found again.
#pragma once
#include <memory>

#include <caf/all.hpp>

#include "config/config.hpp"
#include "runtime/eventlog/audit_anchor.hpp"
#include "runtime/eventlog/event_log.hpp"
#include "runtime/metrics/berth_metrics.hpp"
#include "runtime/state/project_index.hpp"

namespace berth {

// The project index of `log` with the views' settings from `cfg`, loaded (before the tree
// starts: nothing appends meanwhile), snapshotting every
// index_snapshot_every events.
constexpr uint64_t index_snapshot_every = 10000;
std::shared_ptr<project_index> open_project_index(const config& cfg, std::shared_ptr<event_log> log);

// `index` (optional: else opened here) is fed by the event_store and read by the projects.
// `checkpointer` (optional) signs the log's head every N events (actors/event_store.hpp).
// `metrics` (optional) is handed to what records, and gets the tree's scrape-time gauges.
caf::actor start_tree(caf::actor_system& sys, const config& cfg, std::shared_ptr<event_log> log,
                      std::shared_ptr<log_checkpointer> checkpointer = nullptr,
                      std::shared_ptr<berth_metrics> metrics = nullptr,
                      std::shared_ptr<project_index> index = nullptr);

}  // namespace berth
