#include "actors/supervisor.hpp"

#include <algorithm>
#include <exception>
#include <utility>

#include <spdlog/spdlog.h>

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

// -- setup --------------------------------------------------------------------------

void supervisor_core::init(caf::event_based_actor* self, supervisor_flags flags,
                           std::vector<child_spec> children) {
  self_ = self;
  flags_ = flags;
  if (flags_.intensity < 0) flags_.intensity = 0;
  // Equivalent of trap_exit: exit_msgs (except kill) arrive here instead of killing us.
  self_->set_exit_handler(
      [this](caf::scheduled_actor*, caf::exit_msg& em) { handle_exit(em); });
  for (auto& spec : children) {
    if (phase_ != phase::running) break;
    if (find(spec.id) != children_.end()) {
      spdlog::error("supervisor {}: duplicate child id '{}'", self_->id(), spec.id);
      shutdown(make_error(errc::already_exists, "duplicate child id '" + spec.id + "'"));
      break;
    }
    children_.push_back(child{std::move(spec), caf::actor{}});
    if (!start(children_.back())) {
      auto id = children_.back().spec.id;
      children_.pop_back();
      spdlog::error("supervisor {}: child '{}' failed to start", self_->id(), id);
      shutdown(make_error(errc::internal, "child '" + id + "' failed to start"));
      break;
    }
  }
}

// -- queries ------------------------------------------------------------------------

std::vector<supervisor_core::child>::iterator supervisor_core::find(const std::string& id) {
  return std::find_if(children_.begin(), children_.end(),
                      [&](const child& c) { return c.spec.id == id; });
}

std::vector<supervisor_core::child>::const_iterator
supervisor_core::find(const std::string& id) const {
  return std::find_if(children_.begin(), children_.end(),
                      [&](const child& c) { return c.spec.id == id; });
}

std::vector<supervisor_core::child>::iterator
supervisor_core::find(const caf::actor_addr& addr) {
  return std::find_if(children_.begin(), children_.end(), [&](const child& c) {
    return c.handle && c.handle.address() == addr;
  });
}

caf::actor supervisor_core::which_child(const std::string& id) const {
  auto i = find(id);
  return i != children_.end() ? i->handle : caf::actor{};
}

std::vector<std::string> supervisor_core::child_ids() const {
  std::vector<std::string> ids;
  ids.reserve(children_.size());
  for (auto& c : children_) ids.push_back(c.spec.id);
  return ids;
}

bool supervisor_core::has_child(const std::string& id) const {
  return find(id) != children_.end();
}

bool supervisor_core::is_child(const caf::actor_addr& addr) const {
  return std::any_of(children_.begin(), children_.end(), [&](const child& c) {
    return c.handle && c.handle.address() == addr;
  });
}

std::string supervisor_core::render(const caf::error& err) const {
  if (!err) return "normal";
  return self_->system().render(err);
}

// -- starting -----------------------------------------------------------------------

bool supervisor_core::start(child& c) {
  caf::actor handle;
  try {
    if (c.spec.start) handle = c.spec.start(self_->system());
  } catch (const std::exception& e) {
    spdlog::error("supervisor {}: start of child '{}' threw: {}", self_->id(), c.spec.id, e.what());
    return false;
  } catch (...) {
    spdlog::error("supervisor {}: start of child '{}' threw", self_->id(), c.spec.id);
    return false;
  }
  if (!handle) return false;
  // If the child is already dead, CAF 0.17's link_to enqueues an exit_msg carrying
  // the child's fail state to us, so an early death is still handled below.
  self_->link_to(handle);
  c.handle = handle;
  if (started_hook_) started_hook_(c.spec.id, handle);
  return true;
}

caf::expected<caf::actor> supervisor_core::start_child(child_spec spec) {
  if (self_ == nullptr) return make_error(errc::unavailable, "supervisor not initialised yet");
  if (phase_ == phase::stopping)
    return make_error(errc::unavailable, "supervisor is shutting down");
  if (!spec.start)
    return make_error(errc::invalid_request, "child spec '" + spec.id + "' has no start function");
  if (find(spec.id) != children_.end())
    return make_error(errc::already_exists, "child '" + spec.id + "' already exists");
  auto id = spec.id;
  children_.push_back(child{std::move(spec), caf::actor{}});
  if (!start(children_.back())) {
    children_.erase(find(id));
    return make_error(errc::internal, "child '" + id + "' failed to start");
  }
  spdlog::info("supervisor {}: started child '{}'", self_->id(), id);
  return find(id)->handle;
}

// -- stopping -----------------------------------------------------------------------

void supervisor_core::send_stop(const std::string& id, caf::actor handle, bool in_sequence,
                                std::function<void()> on_stopped) {
  auto stop_id = ++next_stop_id_;
  stopping_child entry{id, handle, stop_id, in_sequence, {}};
  if (on_stopped) entry.on_stopped.push_back(std::move(on_stopped));
  stopping_.push_back(std::move(entry));
  if (in_sequence) sequence_active_ = true;
  // Not self_->send_exit: a CAF actor that receives an exit_msg unlinks from its
  // source, so the child's own exit_msg would never reach us. anon_send_exit uses the
  // child's own address as source: the link stays, and exactly one exit_msg (with the
  // child's real exit reason) arrives when it terminates, whatever the timing.
  caf::anon_send_exit(handle, caf::exit_reason::user_shutdown);
  // One-shot: if the child has not exited by then, it is killed.
  self_->delayed_send(caf::actor_cast<caf::actor>(self_), shutdown_timeout_,
                      supervisor_kill_timeout_atom::value, stop_id);
}

bool supervisor_core::terminate_child(const std::string& id, std::function<void()> on_stopped) {
  auto i = find(id);
  if (i == children_.end()) return false;
  auto handle = std::move(i->handle);
  children_.erase(i);
  spdlog::info("supervisor {}: terminating child '{}'", self_->id(), id);
  if (handle) {
    send_stop(id, std::move(handle), false, std::move(on_stopped));
    return true;
  }
  // Not running: maybe a stop sequence is already waiting for it.
  auto s = std::find_if(stopping_.begin(), stopping_.end(),
                        [&](const stopping_child& x) { return x.id == id; });
  if (s != stopping_.end()) {
    if (on_stopped) s->on_stopped.push_back(std::move(on_stopped));
  } else if (on_stopped) {
    on_stopped();
  }
  return true;
}

void supervisor_core::shutdown(caf::error reason) {
  if (phase_ == phase::stopping) return;
  phase_ = phase::stopping;
  quit_reason_ = std::move(reason);
  advance();
}

// Drives the stop sequence: one child at a time, reverse start order. When nothing
// is left to stop, either restarts everybody (one_for_all) or quits.
void supervisor_core::advance() {
  if (phase_ == phase::running || sequence_active_) return;
  for (auto i = children_.rbegin(); i != children_.rend(); ++i) {
    if (i->handle) {
      auto handle = std::move(i->handle);
      i->handle = caf::actor{};
      send_stop(i->spec.id, std::move(handle), true, {});
      return;
    }
  }
  if (phase_ == phase::restarting) {
    restart_all();
    return;
  }
  // Shutting down: also wait for children stopped through terminate_child.
  if (!stopping_.empty()) return;
  spdlog::info("supervisor {}: children stopped, exiting ({})", self_->id(),
               render(quit_reason_));
  self_->quit(quit_reason_);
}

void supervisor_core::handle_kill_timeout(uint64_t stop_id) {
  auto s = std::find_if(stopping_.begin(), stopping_.end(),
                        [&](const stopping_child& x) { return x.stop_id == stop_id; });
  if (s == stopping_.end()) return;  // already gone
  spdlog::warn("supervisor {}: child '{}' did not stop within {} ms, killing it", self_->id(),
               s->id, shutdown_timeout_.count());
  auto entry = std::move(*s);
  stopping_.erase(s);
  // exit_reason::kill cannot be trapped: the child's exit_msg{kill} would kill us too.
  // Unlink first; an exit_msg it may already have sent is swallowed via strays_.
  self_->unlink_from(entry.handle);
  remember_stray(entry.handle.address());
  caf::anon_send_exit(entry.handle, caf::exit_reason::kill);
  for (auto& f : entry.on_stopped)
    if (f) f();
  if (entry.in_sequence) sequence_active_ = false;
  advance();
}

void supervisor_core::remember_stray(const caf::actor_addr& addr) {
  strays_.push_back(addr);
  while (strays_.size() > max_strays) strays_.pop_front();
}

// -- exits and restarts -------------------------------------------------------------

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

// -- handlers and the plain supervisor ------------------------------------------------

caf::message_handler supervisor_handlers(caf::event_based_actor* self, supervisor_core& core) {
  return {
    [&core](start_child_atom, child_spec& spec) -> caf::result<caf::actor> {
      auto res = core.start_child(std::move(spec));
      if (!res) return std::move(res.error());
      return std::move(*res);
    },
    [self, &core](terminate_child_atom, const std::string& id) -> caf::result<bool> {
      if (!core.has_child(id)) return false;
      // Replied once the child is gone.
      auto rp = self->make_response_promise<bool>();
      core.terminate_child(id, [rp]() mutable {
        if (rp.pending()) rp.deliver(true);
      });
      return rp;
    },
    [&core](which_child_atom, const std::string& id) -> caf::result<caf::actor> {
      auto handle = core.which_child(id);
      if (!handle) return make_error(errc::not_found, "no running child '" + id + "'");
      return handle;
    },
    [&core](which_children_atom) { return core.child_ids(); },
    [&core](restart_count_atom) { return static_cast<uint64_t>(core.restarts()); },
    [&core](supervisor_kill_timeout_atom, uint64_t stop_id) {
      core.handle_kill_timeout(stop_id);
    },
  };
}

caf::behavior supervisor(caf::stateful_actor<supervisor_state>* self, supervisor_flags flags,
                         std::vector<child_spec> children) {
  self->state.sup.init(self, flags, std::move(children));
  return supervisor_handlers(self, self->state.sup);
}

}  // namespace berth
