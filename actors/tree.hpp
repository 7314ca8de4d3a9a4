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

namespace berth {

// `checkpointer` (optional) signs the log's head every N events (actors/event_store.hpp).
// `metrics` (optional) is handed to what records, and gets the tree's scrape-time gauges.
caf::actor start_tree(caf::actor_system& sys, const config& cfg, std::shared_ptr<event_log> log,
                      std::shared_ptr<log_checkpointer> checkpointer = nullptr,
                      std::shared_ptr<berth_metrics> metrics = nullptr);

}  // namespace berth
