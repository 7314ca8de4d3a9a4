// supervisor_core (see supervisor.hpp): setup, child queries and starting children, plus the
// supervision handlers and the plain supervisor actor. Stop sequences: supervisor_stop.cpp;
// exits and restarts: supervisor_restart.cpp.
#include "actors/supervisor.hpp"

#include <algorithm>
#include <exception>
#include <utility>

#include <spdlog/spdlog.h>

namespace berth {

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
