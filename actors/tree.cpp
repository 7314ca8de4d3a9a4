#include "actors/tree.hpp"

#include <spdlog/spdlog.h>

#include "actors/backends.hpp"
#include "actors/event_store.hpp"
#include "actors/keeper.hpp"
#include "actors/names.hpp"
#include "actors/port_allocator.hpp"
#include "actors/projects.hpp"
#include "actors/proxy.hpp"
#include "actors/tls_front.hpp"
#include "actors/supervisor.hpp"
#include "messages/atoms.hpp"
#include "runtime/docker/docker_runtime.hpp"
#include "runtime/docker/engine.hpp"
#include "runtime/docker/swarm_runtime.hpp"
#include "runtime/process/process_runtime.hpp"
#include "runtime/runtimes.hpp"

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

// Gauges read when /metrics is scraped: cheap, thread-safe reads, no actor asked.
void add_scrape_gauges(caf::actor_system& sys, berth_metrics& m, std::shared_ptr<event_log> log,
                       std::shared_ptr<backend_guards> guards) {
  m.registry().on_scrape([&sys, &m, log, guards] {
    m.actors.set(static_cast<double>(sys.registry().running()));
    m.eventlog_disk_bytes.set(static_cast<double>(log->disk_bytes()));
    for (auto& b : guards->breakers().snapshots())
      m.breaker_state.with({b.backend}).set(b.state == breaker_state::open        ? 2
                                            : b.state == breaker_state::half_open ? 1
                                                                                  : 0);
  });
}

}  // namespace

std::shared_ptr<project_index> open_project_index(const config& cfg, std::shared_ptr<event_log> log) {
  auto index = std::make_shared<project_index>(
      index_view_settings{cfg.deploy.site, cfg.data_dir, keeper_policy_of(cfg.deploy).restart});
  index->load(log);
  index->set_snapshot_every(index_snapshot_every);
  return index;
}

caf::actor start_tree(caf::actor_system& sys, const config& cfg, std::shared_ptr<event_log> log,
                      std::shared_ptr<log_checkpointer> checkpointer, std::shared_ptr<berth_metrics> metrics,
                      std::shared_ptr<project_index> index) {
  if (!index) index = open_project_index(cfg, log);
  // One runtime driver and one set of backend breakers for the whole server, handed down.
  auto process = make_process_runtime(cfg.data_dir, cfg.limits.unavailable.empty() ? cfg.limits.cgroup_root : "off",
                                      make_sandbox_options(cfg.deploy.sandbox.enabled()));
  // The container runtimes: made without contacting the engine (nothing is asked of it until
  // a project uses docker), so a server without one starts as fast as before.
  std::shared_ptr<runtime_driver> docker, swarm;
  std::string why_not;
  if (cfg.containers.enabled()) {
    auto engine = std::make_shared<docker_engine>(cfg.containers.docker_host.empty() ? default_docker_host()
                                                                                     : cfg.containers.docker_host);
    container_runtime_options copts{cfg.data_dir, cfg.deploy.registry, app_log_rotation()};
    docker = make_docker_runtime(engine, copts);
    swarm = make_swarm_runtime(engine, copts);
  } else {
    why_not = "--docker-host off";
  }
  std::shared_ptr<runtime_driver> driver = std::make_shared<runtime_set>(process, docker, swarm, why_not);
  auto shared = std::make_shared<backend_guards>();
  auto& r = cfg.resilience;
  shared->breakers().configure({r.breaker_failures, std::chrono::milliseconds(r.breaker_open_ms)},
                               {r.retry_attempts, std::chrono::milliseconds(r.retry_base_ms),
                                std::chrono::milliseconds(r.retry_max_ms)});
  if (metrics) add_scrape_gauges(sys, *metrics, log, shared);
  auto production = cfg.production_ports;
  auto preview = cfg.preview_ports;
  auto data_dir = cfg.data_dir;
  auto deploy = cfg.deploy;
  // Canaries: HAProxy logs each request of a split route to the meter's socket.
  std::shared_ptr<traffic_meter> meter;
  if (deploy.canary_unavailable.empty()) {
    if (auto s = traffic_meter::open(traffic_socket_path(haproxy_dir_of(cfg.data_dir)), &meter); !s) {
      deploy.canary_unavailable = "production.canary: the traffic meter cannot open: " + s.message();
      spdlog::warn("{}", deploy.canary_unavailable);
    }
  }
  auto proxy = cfg.proxy;
  std::vector<child_spec> children{
      {"event_store",
       registered(names::event_store, [=](caf::actor_system& s) {
                    return spawn_event_store(s, log, event_store_state::default_max_linger, checkpointer, metrics,
                                             [index](const std::vector<event_record>& batch) { index->apply(batch); });
                  }),
       restart_type::permanent},
      {"backends", registered(names::backends, [=](caf::actor_system& s) { return s.spawn(backends_actor, shared); }),
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
                                   [=](caf::actor_system& s) {
                                     return s.spawn(proxy_actor, proxy, data_dir, driver, shared, metrics);
                                   }),
                        restart_type::permanent});
  if (cfg.deploy.proxy && cfg.proxy.tls())
    children.push_back({"tls_front",
                        registered(names::tls_front,
                                   [=](caf::actor_system& s) {
                                     return s.spawn(tls_front_actor, proxy, data_dir, driver, metrics);
                                   }),
                        restart_type::permanent});
  children.push_back(
      {"projects",
       registered(names::projects,
                  [=](caf::actor_system& s) {
                    return s.spawn(projects_actor, data_dir, deploy, driver, shared, index, metrics, meter);
                  }),
       restart_type::permanent});
  supervisor_flags flags;
  flags.intensity = 5;
  flags.period = std::chrono::seconds(30);
  return sys.spawn(supervisor, flags, std::move(children));
}

}  // namespace berth
