// supervisor_core's stop sequences (see supervisor.hpp): stopping one child, shutting down in
// reverse start order, and killing a child that does not stop in time.
#include <algorithm>
#include <utility>

#include <spdlog/spdlog.h>

#include "actors/supervisor.hpp"

namespace berth {

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

}  // namespace berth
