// supervisor_core's exit handling and restart policy (see supervisor.hpp): which exits restart
// a child, one_for_one and one_for_all restarts, and escalation past the restart intensity.
#include <algorithm>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "actors/supervisor.hpp"

namespace berth {

namespace {

bool is_normal(const caf::error& reason) {
  return !reason || reason == caf::exit_reason::normal;
}

// transient children are restarted only after an abnormal exit.
bool is_abnormal(const caf::error& reason) {
  return !is_normal(reason) && reason != caf::exit_reason::user_shutdown;
}

bool should_restart(restart_type type, const caf::error& reason) {
  switch (type) {
    case restart_type::permanent: return true;
    case restart_type::transient: return is_abnormal(reason);
    case restart_type::temporary: return false;
  }
  return false;
}

const char* to_cstr(restart_type type) {
  switch (type) {
    case restart_type::permanent: return "permanent";
    case restart_type::transient: return "transient";
    case restart_type::temporary: return "temporary";
  }
  return "?";
}

}  // namespace

void supervisor_core::handle_exit(caf::exit_msg& em) {
  // 1. A child we asked to stop: expected, never a failure.
  auto s = std::find_if(stopping_.begin(), stopping_.end(), [&](const stopping_child& x) {
    return x.handle.address() == em.source;
  });
  if (s != stopping_.end()) {
    auto entry = std::move(*s);
    stopping_.erase(s);
    for (auto& f : entry.on_stopped)
      if (f) f();
    if (entry.in_sequence) sequence_active_ = false;
    advance();
    return;
  }
  // 2. A killed child whose exit_msg was already on its way when we unlinked.
  auto st = std::find(strays_.begin(), strays_.end(), em.source);
  if (st != strays_.end()) {
    strays_.erase(st);
    return;
  }
  // 3. A running child died on its own.
  auto c = find(em.source);
  if (c != children_.end()) {
    c->handle = caf::actor{};
    auto id = c->spec.id;
    switch (phase_) {
      case phase::running:
        spdlog::info("supervisor {}: child '{}' exited ({})", self_->id(), id, render(em.reason));
        child_exited(id, em.reason);
        break;
      case phase::restarting:
        // It will be restarted with the others, unless its type says otherwise.
        if (!should_restart(c->spec.restart, em.reason)) children_.erase(c);
        advance();
        break;
      case phase::stopping:
        advance();
        break;
    }
    return;
  }
  // 4. Not a child: the parent or someone asking us to stop.
  if (foreign_hook_) {
    foreign_hook_(em);
    return;
  }
  spdlog::info("supervisor {}: exit request ({}), stopping children", self_->id(),
               render(em.reason));
  shutdown(em.reason);
}

// Precondition: the child's handle is cleared and phase_ is running.
void supervisor_core::child_exited(const std::string& id, const caf::error& reason) {
  auto i = find(id);
  if (i == children_.end()) return;
  if (!should_restart(i->spec.restart, reason)) {
    spdlog::info("supervisor {}: {} child '{}' not restarted, removed", self_->id(),
                 to_cstr(i->spec.restart), id);
    children_.erase(i);
    return;
  }
  if (failure_hook_ && failure_hook_(id, reason)) return;  // parked; the owner restarts it
  if (!record_restart()) {
    escalate(id);
    return;
  }
  if (flags_.strategy == restart_strategy::one_for_one) {
    restart_one(id);
  } else {
    spdlog::info("supervisor {}: one_for_all: stopping the other children of '{}'",
                 self_->id(), id);
    phase_ = phase::restarting;
    advance();
  }
}

bool supervisor_core::record_restart() {
  auto now = clock_type::now();
  while (!restart_times_.empty() && now - restart_times_.front() > flags_.period)
    restart_times_.pop_front();
  restart_times_.push_back(now);
  if (restart_times_.size() > static_cast<size_t>(flags_.intensity)) return false;
  ++restarts_;
  return true;
}

void supervisor_core::restart_one(const std::string& id) {
  auto i = find(id);
  if (i == children_.end()) return;
  spdlog::info("supervisor {}: restarting child '{}' (restart #{})", self_->id(), id, restarts_);
  if (!start(*i)) {
    spdlog::error("supervisor {}: restart of child '{}' failed", self_->id(), id);
    // Counts as another failure: bounded by the intensity.
    child_exited(id, make_error(errc::internal, "child '" + id + "' failed to start"));
  }
}

bool supervisor_core::restart_child(const std::string& id) {
  auto i = find(id);
  if (i == children_.end() || i->handle || phase_ != phase::running) return false;
  spdlog::info("supervisor {}: starting parked child '{}'", self_->id(), id);
  if (!start(*i)) child_exited(id, make_error(errc::internal, "child '" + id + "' failed to start"));
  return true;
}

void supervisor_core::restart_all() {
  phase_ = phase::running;
  spdlog::info("supervisor {}: one_for_all: restarting children (restart #{})", self_->id(),
               restarts_);
  std::vector<std::string> failed;
  for (auto i = children_.begin(); i != children_.end();) {
    if (i->handle) {  // started meanwhile (start_child)
      ++i;
      continue;
    }
    if (i->spec.restart == restart_type::temporary) {
      spdlog::info("supervisor {}: temporary child '{}' dropped", self_->id(), i->spec.id);
      i = children_.erase(i);
      continue;
    }
    if (!start(*i)) failed.push_back(i->spec.id);
    ++i;
  }
  for (auto& id : failed) {
    if (phase_ != phase::running) break;
    auto i = find(id);
    if (i != children_.end() && !i->handle) {
      spdlog::error("supervisor {}: restart of child '{}' failed", self_->id(), id);
      child_exited(id, make_error(errc::internal, "child '" + id + "' failed to start"));
    }
  }
}

void supervisor_core::escalate(const std::string& id) {
  auto msg = "more than " + std::to_string(flags_.intensity) + " restarts in "
             + std::to_string(flags_.period.count()) + " ms (last: child '" + id + "')";
  spdlog::warn("supervisor {}: restart intensity reached: {}; giving up", self_->id(), msg);
  shutdown(make_error(errc::restart_intensity, msg));
}

}  // namespace berth
