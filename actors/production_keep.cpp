// production:<name> keeping production up: the start-up reconciliation after a crash or a
// restart, the keeper of the serving release (restarts with backoff and jitter, crash loops,
// health restarts), and production/stop and production/start.
#include <spdlog/spdlog.h>

#include "actors/blocking.hpp"
#include "actors/names.hpp"
#include "actors/production_detail.hpp"
#include "messages/atoms.hpp"
#include "messages/errors.hpp"
#include "runtime/logs/logging.hpp"
#include "runtime/pipeline/launch.hpp"
#include "runtime/release/tidy.hpp"
#include "runtime/release/release.hpp"
#include "runtime/runtimes.hpp"

namespace berth::production_detail {

using json = nlohmann::json;

namespace {

std::chrono::milliseconds grace_of(self_ptr self) {
  return std::chrono::milliseconds(self->state.env.settings.stop_grace_ms);
}

void give_back_port(self_ptr self, uint16_t port, const std::string& why) {
  if (port != 0 && port != self->state.stable_port)
    caf::anon_send(names::whereis(self->system(), names::ports), release_atom_v, port, why);
}

// A blocking start of the current release: on the stable port (direct), or on a leased spare
// port with the production route pointed at it once it is healthy (proxy).
std::function<status(instance_ref*)> current_start(self_ptr self) {
  auto& st = self->state;
  auto* sys = &self->system();
  return [sys, env = st.env, spec = st.spec, port = st.stable_port, hash = st.prod.current,
          route = st.route](instance_ref* out) {
    uint16_t on = port;
    auto ports = names::whereis(*sys, names::ports);
    if (env.settings.proxy) {
      caf::scoped_actor asker{*sys};
      status leased = status::io_error("the port allocator did not answer");
      asker->request(ports, std::chrono::seconds(30), lease_atom_v, env.project, port_kind::candidate)
          .receive([&](uint16_t p) { on = p, leased = status::ok(); },
                   [&](caf::error& err) { leased = status::io_error("no spare port: " + view(err).message); });
      if (!leased) return leased;
    }
    auto give_back = [&] { if (on != port) caf::anon_send(ports, release_atom_v, on, std::string{"production start failed"}); };
    auto vars = release_environment(spec, env.project, read_secrets_file(env.paths));
    release_launch l;
    l.project = env.project;
    l.hash = hash;
    l.spec = &spec;
    l.paths = &env.paths;
    l.env = &vars;
    l.port = on;
    l.sandbox = env.sandbox;
    l.probe_every = std::chrono::milliseconds(spec.production_health.interval_ms);
    l.stop_grace = std::chrono::milliseconds(env.settings.stop_grace_ms);
    if (auto s = launch_release(*env.driver, *env.guards, l, out); !s) {
      give_back();
      return s;
    }
    if (env.settings.proxy) {
      if (auto s = route->point(*sys, env, port, on); !s) {
        env.driver->stop(*out, l.stop_grace);
        route->point(*sys, env, port, 0);  // the log may hold the route: away before the port goes back
        give_back();
        return s;
      }
    }
    return status::ok();
  };
}

// The release is down: its route is taken away before its port goes back to the pool (so
// that nothing else can be reached through it), then the log learns why.
void release_down(self_ptr self, const std::string& why, std::function<void()> then) {
  auto& st = self->state;
  auto port = st.prod.process.port;
  auto record_it = [self, why, port, then] {
    give_back_port(self, port, "production release died");
    record(self, {event(self, ev::production_exited, {{"reason", why}})}, true, [then](auto&) {
      if (then) then();
    });
  };
  if (!st.env.settings.proxy || port == st.stable_port) return record_it();
  auto* sys = &self->system();
  auto env = st.env;
  auto stable = st.stable_port;
  auto route = st.route;
  run_blocking(
      self, [=] { route->point(*sys, env, stable, 0); }, [record_it](const std::string&) { record_it(); });
}

}  // namespace

void init_keeper(self_ptr self) {
  auto policy = keeper_policy_of(self->state.env.settings);
  keeper::hooks h;
  h.what = "production " + self->state.env.project + ": the release";
  h.log_fields = env_fields(self->state.env.project, "production");
  h.start = [self] { return current_start(self); };
  h.probe = [self](const instance_ref& r) { return http_probe(self->state.spec.production_health, r.port); };
  h.died = [self](const std::string& why, std::function<void()> then) { release_down(self, why, then); };
  h.started = [self](const instance_ref& r, const char* why, std::function<void()> then) {
    auto data = to_json(r);
    data["hash"] = self->state.prod.current;
    data["cause"] = why;
    record(self, {event(self, ev::production_started, data)}, true, [then](auto&) { then(); });
  };
  h.crash_loop = [self](const std::string& why) {
    record(self, {event(self, ev::production_crashed, {{"reason", why}})}, true);
  };
  h.exits = [self] { return self->state.prod.exits_us; };
  self->state.release.init(self, self->state.env.driver, policy, std::move(h));
  self->state.release.measure(self->state.env.metrics, "production");
}

void keep_what_the_log_says(self_ptr self) {
  auto& st = self->state;
  auto& p = st.prod;
  if (p.status == "running") return st.release.keep(p.process);
  st.release.release();
  if (p.status == "exited" && !p.current.empty())
    st.release.restart_later("the release is down (" + p.reason + ")");
}

void stop_release(self_ptr self, const std::string& reason, std::function<void()> done) {
  auto& st = self->state;
  st.release.release();
  auto& p = st.prod;
  if (p.status != "running") {
    if (p.status != "exited" && p.status != "crashed") return done();
    // Down already, but meant to run: it stays down now.
    return record(self, {event(self, ev::production_stopped, {{"reason", reason}})}, true, [done](auto&) { done(); });
  }
  auto process = p.process;
  auto* sys = &self->system();
  bool proxy = st.env.settings.proxy && names::whereis(*sys, names::proxy);
  auto route = st.route;
  auto env = st.env;
  auto driver = st.env.driver;
  auto grace = grace_of(self);
  run_blocking(
      self,
      [=] {
        if (proxy) route->take_away(*sys, env);  // no route before the port goes back
        driver->stop(process, grace);
      },
      [=](const std::string&) {
        give_back_port(self, process.port, "production stopped");
        record(self, {event(self, ev::production_stopped, {{"reason", reason}})}, true, [done](auto&) { done(); });
      });
}

void start_release_now(self_ptr self, std::function<void(const std::string&)> done) {
  auto& st = self->state;
  if (st.prod.status == "running" && st.env.driver->inspect(st.prod.process).running()) return done("");
  if (st.prod.current.empty()) return done("nothing has been deployed to production yet");
  st.release.start_now(current_start(self), [self, done](const status& failure) {
    if (failure) return done("");
    auto why = failure.message();
    record(self, {event(self, ev::production_exited, {{"reason", "cannot start: " + why}})}, true,
           [done, why](auto&) { done("cannot start production: " + why); });
  });
}

void reconcile_at_start(self_ptr self, std::function<void()> ready) {
  auto& st = self->state;
  // The interruption rule, for deployments that were running when production stopped; the
  // queued ones run again, in order.
  std::vector<new_event> ends;
  for (auto& id : st.prod.order) {
    auto& d = st.prod.deployments.at(id);
    if (d.current == phase::queued) st.queue.push_back({production_command::kind::deployment, id, {}});
    else if (!is_terminal(d.current)) ends.push_back(interrupted_end(self, d, "berth stopped"));
  }
  record(self, std::move(ends), true, [self, ready](auto&) {
    auto& st = self->state;
    auto& p = st.prod;
    auto serving = p.status == "running" ? p.process : instance_ref{};
    // The leases of candidates the interrupted jobs held (behind the proxy the serving release
    // runs on one of these spare ports: it keeps it).
    caf::anon_send(names::whereis(self->system(), names::ports), release_atom_v, st.env.project,
                   port_kind::candidate, std::string{"job interrupted"}, serving.port);
    std::set<std::string> known;
    for (auto& [hash, r] : p.releases) known.insert(hash);
    auto env = st.env;
    auto runtimes = runtimes_to_sweep(st.spec.runtime, serving);
    auto current = p.current;
    auto grace = grace_of(self);
    auto stable = st.stable_port;
    auto alive = std::make_shared<bool>(false);
    auto report = std::make_shared<std::vector<std::string>>();
    run_blocking(
        self,
        [=] {
          make_dirs({env.paths.production, env.paths.production_logs});
          // What the log does not own: builds, candidates, a release that was being replaced.
          // Builds run as processes whatever the runtime; releases where the project's runtimes run them.
          std::vector<instance_labels> where{{env.project, "build", "", "process"}};
          for (auto& runtime : runtimes) where.push_back({env.project, "production", "", runtime});
          for (auto& labels : where)
            for (auto& r : env.driver->list(labels)) {
              if (r == serving) continue;
              env.driver->stop(r, grace);
              report->push_back("stopped stray " + labels.env + " process (pid " + std::to_string(r.pid) + ")");
            }
          for (auto& change : tidy_production_dir(env.paths.production, known, current)) report->push_back(change);
          // Images of releases the log does not know (a deploy that died after its image build).
          if (runtimes.size() > 1 || runtimes[0] != "process")
            for (auto& hash : env.driver->artifacts(env.project))
              if (!known.count(hash) && env.driver->remove_artifact({env.project, "production", hash, "docker"}))
                report->push_back("removed the image of release " + hash + ", which the log does not know");
          *alive = !serving.empty() && env.driver->inspect(serving).running();
        },
        [=](const std::string& failure) {
          if (!failure.empty()) report->push_back(failure);
          for (auto& line : *report)
            log_kv(spdlog::level::info, "production start-up reconciliation: " + line,
                   env_fields(self->state.env.project, "production"));
          ready();
          auto& p = self->state.prod;
          if (p.status == "running" && !*alive) {
            auto why = std::string("the release was gone when production started");
            return release_down(self, why, [self, why] { self->state.release.restart_later(why); });
          }
          if (*alive) {
            log_kv(spdlog::level::info, "production adopted its running release",
                   env_fields(self->state.env.project, "production", {{"release", p.current}, {"pid", p.process.pid}}));
            // Behind the proxy the route may still point at a candidate of the interrupted job.
            // Not waited for: production takes commands (a shutdown) while Caddy comes up.
            if (auto proxy = names::whereis(self->system(), names::proxy); proxy && self->state.env.settings.proxy) {
              auto route = production_route_of(self->state.env, stable, p.process.port, self->state.spec.domains);
              self->state.route->noted(route.upstream_port, route.domains);
              self->request(proxy, std::chrono::seconds(60), route_atom_v, route)
                  .then([](bool) {}, [self](caf::error& err) {
                    log_kv(spdlog::level::warn, "production re-routing failed: " + view(err).message,
                           env_fields(self->state.env.project, "production"));
                  });
            }
          }
          keep_what_the_log_says(self);
        });
  });
}

}  // namespace berth::production_detail
