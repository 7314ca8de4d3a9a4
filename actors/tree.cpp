#include "actors/tree.hpp"

#include <atomic>

#include <nlohmann/json.hpp>

#include "actors/event_store.hpp"
#include "actors/names.hpp"
#include "actors/port_allocator.hpp"
#include "actors/projects.hpp"
#include "actors/proxy.hpp"
#include "actors/supervisor.hpp"
#include "messages/atoms.hpp"
#include "runtime/breaker.hpp"
#include "runtime/logging.hpp"

namespace berth {

namespace {
template <class F>
std::function<caf::actor(caf::actor_system&)> registered(caf::atom_value name, F spawn) {
  return [=](caf::actor_system& sys) {
    caf::actor a = spawn(sys);
    // CAF 0.17's put() keeps an existing entry, even a dead incarnation's: replace it, and
    // drop it when this incarnation ends so nobody is handed a dead actor.
    sys.registry().erase(name);
    sys.registry().put(name, a);
    a->attach_functor([&sys, name, addr = a.address()] {
      if (sys.registry().get<caf::actor>(name).address() == addr) sys.registry().erase(name);
    });
    return a;
  };
}

// Every state change of a backend's circuit breaker becomes an event in the `backends`
// stream (breaker_opened | breaker_half_open | breaker_closed {backend, from, failures,
// last_error}) and a log line. The listener runs on the thread that changed the state, with
// the breaker's lock held: it only sends (the event store's answer to an anonymous request is
// dropped). If the event store is down at that moment, the change is only logged.
void record_breaker_changes(caf::actor_system& sys, caf::actor root) {
  static std::atomic<uint64_t> installed{0};
  auto token = ++installed;
  breakers().set_listener([&sys](const breaker_change& c) {
    const char* type = c.to == breaker_state::open        ? "breaker_opened"
                       : c.to == breaker_state::half_open ? "breaker_half_open"
                                                          : "breaker_closed";
    nlohmann::json data{{"backend", c.backend},
                        {"from", to_string(c.from)},
                        {"failures", c.failures},
                        {"last_error", c.last_error.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.last_error)}};
    log_kv(c.to == breaker_state::closed ? spdlog::level::info : spdlog::level::warn, "circuit breaker",
           {{"backend", c.backend}, {"state", to_string(c.to)}, {"failures", c.failures},
            {"last_error", c.last_error}});
    if (auto store = names::whereis(sys, names::event_store))
      caf::anon_send(store, append_atom_v, std::vector<new_event>{{backends_stream, type, data.dump()}});
  });
  // The listener refers to `sys`: take it away when this tree ends (unless a newer tree has
  // installed its own meanwhile).
  root->attach_functor([token] {
    if (installed.load() == token) breakers().set_listener({});
  });
}
}  // namespace

caf::actor start_tree(caf::actor_system& sys, const config& cfg, std::shared_ptr<event_log> log) {
  auto production = cfg.production_ports;
  auto preview = cfg.preview_ports;
  auto data_dir = cfg.data_dir;
  auto deploy = cfg.deploy;
  auto proxy = cfg.proxy;
  std::vector<child_spec> children{
      {"event_store",
       registered(names::event_store, [=](caf::actor_system& s) { return spawn_event_store(s, log); }),
       restart_type::permanent},
      {"port_allocator",
       registered(names::ports,
                  [=](caf::actor_system& s) { return s.spawn(port_allocator, production, preview); }),
       restart_type::permanent},
  };
  // Before the projects: their routes go to a proxy that is already there.
  if (cfg.deploy.proxy)
    children.push_back({"proxy",
                        registered(names::proxy,
                                   [=](caf::actor_system& s) { return s.spawn(proxy_actor, proxy, data_dir); }),
                        restart_type::permanent});
  children.push_back(
      {"projects",
       registered(names::projects,
                  [=](caf::actor_system& s) { return s.spawn(projects_actor, data_dir, deploy); }),
       restart_type::permanent});
  supervisor_flags flags;
  flags.intensity = 5;
  flags.period = std::chrono::seconds(30);
  auto& r = cfg.resilience;
  breakers().configure({r.breaker_failures, std::chrono::milliseconds(r.breaker_open_ms)},
                       {r.retry_attempts, std::chrono::milliseconds(r.retry_base_ms),
                        std::chrono::milliseconds(r.retry_max_ms)});
  auto root = sys.spawn(supervisor, flags, std::move(children));
  record_breaker_changes(sys, root);
  return root;
}

}  // namespace berth
