// OTP-style supervision on CAF 0.17 links + trap_exit (see DESIGN.md, "Actor tree").
//
// supervisor_core lives inside an actor's state, so any event-based actor can BE a
// supervisor and still have its own handlers:
//
//   struct project_state { berth::supervisor_core sup; ... };
//   caf::behavior project(caf::stateful_actor<project_state>* self, ...) {
//     self->state.sup.init(self, flags, {preview_spec, production_spec});
//     return berth::supervisor_handlers(self, self->state.sup).or_else(
//       [=](status_atom) { ... });
//   }
//
// Rules (OTP):
// - children are spawned with spec.start(system) and then linked; the supervisor traps
//   exits. A child that is already dead when it is linked is still reported (CAF 0.17
//   sends an exit_msg with the child's fail state to the linking actor).
// - permanent: restarted after any exit; transient: only after an abnormal exit (not
//   none/normal, not user_shutdown); temporary: never, and its spec is dropped.
// - one_for_one: only the dead child is restarted. one_for_all: the others are stopped
//   one by one in reverse start order (user_shutdown, waiting for each exit_msg, which
//   is not counted as a failure), then every non-temporary child is started again in
//   start order (temporary children are dropped).
// - more than `intensity` restarts within `period`: the children are stopped (reverse
//   order) and the supervisor quits with errc::restart_intensity, which its linked
//   parent sees as an abnormal exit.
// - an exit_msg from a non-child (the parent, anon_send_exit) stops the children in
//   reverse order, then the supervisor quits with that reason.
// - children are stopped with anon_send_exit(child, user_shutdown): an exit_msg sent
//   by the supervisor itself would make the child unlink from it (CAF unlinks from the
//   source of every exit_msg it receives), and its final exit_msg would be lost. A
//   child that traps exits therefore sees its own address as the source.
// - a child that does not exit within the shutdown timeout after user_shutdown is
//   unlinked and sent exit_reason::kill, and the sequence goes on (nothing waits
//   forever).
// - exit_reason::kill cannot be trapped in CAF: never send it to a supervised actor.
//   Its exit_msg{kill} would kill the supervisor as well, and so on up the tree.
// Nothing blocks or polls: every step is driven by an exit_msg, plus one one-shot
// delayed message per stopped child for the kill timeout.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "messages/atoms.hpp"
#include "messages/errors.hpp"
#include "messages/supervision.hpp"

namespace berth {

// Internal, self-sent: (supervisor_kill_timeout_atom, uint64_t stop_id). Handled by
// supervisor_handlers, so that behaviour must stay part of the actor's behaviour.
using supervisor_kill_timeout_atom = caf::atom_constant<caf::atom("supkilltmo")>;

class supervisor_core {
 public:
  using clock_type = std::chrono::steady_clock;
  // Called each time a child is (re)started, with its new handle. It must not start or
  // terminate children itself (send a message to self instead).
  using started_hook = std::function<void(const std::string& id, const caf::actor& handle)>;
  // Called for an exit_msg whose source is not a child. Default: shutdown(em.reason).
  using foreign_exit_hook = std::function<void(caf::exit_msg& em)>;
  // Called when a running child died and would be restarted now. Returning true parks the
  // child instead: its spec stays (handle invalid), nothing is counted against the intensity,
  // and the owner calls restart_child(id) when it wants (a restart with backoff).
  using failure_hook = std::function<bool(const std::string& id, const caf::error& reason)>;

  supervisor_core() = default;
  supervisor_core(const supervisor_core&) = delete;
  supervisor_core& operator=(const supervisor_core&) = delete;

  // Sets the exit handler (trap_exit) and starts the static children in order. If one
  // of them cannot be started (start throws or returns an invalid handle) or two share
  // an id, the ones already started are stopped and the actor quits with an error.
  void init(caf::event_based_actor* self, supervisor_flags flags, std::vector<child_spec> children);

  // Starts and links a dynamic child (appended to the start order).
  // Errors: already_exists (id taken), invalid_request (no start function),
  // internal (start failed), unavailable (shutting down, or init not called yet).
  caf::expected<caf::actor> start_child(child_spec spec);

  // Stops the child with user_shutdown, forgets its spec, never restarts it. Returns
  // false if there is no such child. `on_stopped` runs once the child's exit_msg has
  // arrived (at once if it is not running).
  bool terminate_child(const std::string& id, std::function<void()> on_stopped = {});

  // Starts a parked child again (see on_child_failed). Returns false if there is no such
  // child, it is running, or the supervisor is not running; a start that fails is handled
  // like a death (the failure hook is asked again).
  bool restart_child(const std::string& id);

  // Whether a child with this id is known (running or about to be restarted).
  bool has_child(const std::string& id) const;
  // The running child with this id; an invalid handle if none (or while it restarts).
  caf::actor which_child(const std::string& id) const;
  // Ids of all known children, in start order.
  std::vector<std::string> child_ids() const;
  // Total restarts performed so far (a one_for_all restart counts once).
  size_t restarts() const { return restarts_; }

  // Stops all children in reverse start order, then quits the actor with `reason`.
  void shutdown(caf::error reason);
  bool shutting_down() const { return phase_ == phase::stopping; }
  bool is_child(const caf::actor_addr& addr) const;
  const supervisor_flags& flags() const { return flags_; }

  void on_child_started(started_hook f) { started_hook_ = std::move(f); }
  void on_foreign_exit(foreign_exit_hook f) { foreign_hook_ = std::move(f); }
  void on_child_failed(failure_hook f) { failure_hook_ = std::move(f); }
  // How long a stopped child may take before it is killed (default 5 s).
  void set_shutdown_timeout(std::chrono::milliseconds t) { shutdown_timeout_ = t; }

  // Entry points used by the installed exit handler and by supervisor_handlers.
  void handle_exit(caf::exit_msg& em);
  void handle_kill_timeout(uint64_t stop_id);

 private:
  enum class phase : uint8_t { running, restarting, stopping };

  struct child {
    child_spec spec;
    caf::actor handle;  // invalid while not running
  };

  // A child we told to stop; its exit_msg is expected and is not a failure.
  struct stopping_child {
    std::string id;
    caf::actor handle;
    uint64_t stop_id;
    bool in_sequence;  // the stop sequence (one_for_all / shutdown) waits for it
    std::vector<std::function<void()>> on_stopped;
  };

  std::vector<child>::iterator find(const std::string& id);
  std::vector<child>::const_iterator find(const std::string& id) const;
  std::vector<child>::iterator find(const caf::actor_addr& addr);
  bool start(child& c);
  void send_stop(const std::string& id, caf::actor handle, bool in_sequence,
                 std::function<void()> on_stopped);
  void advance();
  void remember_stray(const caf::actor_addr& addr);
  void child_exited(const std::string& id, const caf::error& reason);
  bool record_restart();
  void restart_one(const std::string& id);
  void restart_all();
  void escalate(const std::string& id);
  std::string render(const caf::error& err) const;

  caf::event_based_actor* self_ = nullptr;
  supervisor_flags flags_;
  std::vector<child> children_;        // start order
  std::vector<stopping_child> stopping_;
  static constexpr size_t max_strays = 64;
  std::deque<caf::actor_addr> strays_;  // killed and unlinked; a late exit_msg is ignored
  std::deque<clock_type::time_point> restart_times_;  // within the current period
  size_t restarts_ = 0;
  phase phase_ = phase::running;
  caf::error quit_reason_;
  bool sequence_active_ = false;  // a child with in_sequence is awaited
  uint64_t next_stop_id_ = 0;
  std::chrono::milliseconds shutdown_timeout_{5000};
  started_hook started_hook_;
  foreign_exit_hook foreign_hook_;
  failure_hook failure_hook_;
};

// Handlers for the supervision atoms (plus the internal kill timeout), to combine with
// an actor's own: `return supervisor_handlers(self, st.sup).or_else(own...)`.
//   (start_child_atom, child_spec)      -> caf::actor | error
//   (terminate_child_atom, std::string) -> bool (replied once the child is gone)
//   (which_child_atom, std::string)     -> caf::actor | error not_found
//   (which_children_atom)               -> std::vector<std::string>
//   (restart_count_atom)                -> uint64_t
caf::message_handler supervisor_handlers(caf::event_based_actor* self, supervisor_core& core);

struct supervisor_state {
  supervisor_core sup;
  static inline const char* name = "berth.supervisor";
};

// A plain supervisor actor (root, projects): sys.spawn(berth::supervisor, flags, specs).
caf::behavior supervisor(caf::stateful_actor<supervisor_state>* self, supervisor_flags flags,
                         std::vector<child_spec> children);

}  // namespace berth
