#include "actors/backends.hpp"

#include <atomic>

#include <nlohmann/json.hpp>

#include "actors/names.hpp"
#include "messages/atoms.hpp"
#include "messages/errors.hpp"
#include "runtime/logs/logging.hpp"

namespace berth {

namespace {

// Every state change of a breaker becomes an event and a log line. The listener runs on the
// thread that changed the state, with the breaker's lock held: it only sends (the event store's
// answer to an anonymous request is dropped). If the event store is down at that moment, the
// change is only logged.
breaker_listener record_changes(caf::actor_system& sys) {
  return [&sys](const breaker_change& c) {
    const char* type = c.to == breaker_state::open        ? "breaker_opened"
                       : c.to == breaker_state::half_open ? "breaker_half_open"
                                                          : "breaker_closed";
    nlohmann::json data{{"backend", c.backend},
                        {"from", to_string(c.from)},
                        {"failures", c.failures},
                        {"last_error", c.last_error.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.last_error)}};
    log_kv(c.to == breaker_state::closed ? spdlog::level::info : spdlog::level::warn, "circuit breaker",
           {{"backend", c.backend}, {"state", to_string(c.to)}, {"failures", c.failures}, {"last_error", c.last_error}});
    if (auto store = names::whereis(sys, names::event_store))
      caf::anon_send(store, append_atom_v, std::vector<new_event>{{backends_stream, type, dump_json(data)}});
  };
}

}  // namespace

caf::behavior backends_actor(caf::stateful_actor<backends_state>* self, std::shared_ptr<backend_guards> shared) {
  static std::atomic<uint64_t> installed{0};
  auto token = ++installed;
  shared->breakers().set_listener(record_changes(self->system()));
  // The listener refers to the actor system: take it away when this actor ends (unless a newer
  // incarnation has installed its own meanwhile).
  self->attach_functor([shared, token] {
    if (installed.load() == token) shared->breakers().set_listener({});
  });
  self->state.shared = std::move(shared);
  return {
      [=](status_atom) { return self->state.shared->breakers().snapshots(); },
      [=](fail_atom, const std::string& backend, int32_t count, const std::string& kind) -> caf::result<int32_t> {
        fault_kind k;
        if (!parse_fault_kind(kind, k)) return make_error(errc::invalid_request, "kind must be transient or permanent");
        auto& faults = self->state.shared->faults();
        faults.fail_next(backend, count, k);
        return static_cast<int32_t>(faults.pending(backend));
      },
  };
}

}  // namespace berth
