#include "actors/production.hpp"

#include <spdlog/spdlog.h>

#include "actors/blocking.hpp"
#include "actors/names.hpp"
#include "actors/production_support.hpp"
#include "messages/atoms.hpp"
#include "messages/errors.hpp"
#include "messages/project_state.hpp"
#include "messages/proxy.hpp"

namespace berth {

namespace production_detail {

using json = nlohmann::json;
using namespace std::chrono_literals;

process_driver& driver() {
  static process_driver d;
  return d;
}

process_handle handle_of(const preview_launched& p) { return {p.pid, p.start_time, p.pgid}; }

json process_json(const release_process& p) {
  return {{"hash", p.hash}, {"pid", p.handle.pid}, {"start_time", p.handle.start_time},
          {"pgid", p.handle.pgid}, {"port", p.port}};
}

void append(self_ptr self, std::vector<new_event> events, std::function<void()> then) {
  self->request(names::whereis(self->system(), names::event_store), store_timeout, append_atom_v,
                std::move(events))
      .then(
          [=](std::vector<event_record>& stored) {
            for (auto& e : stored) fold(self->state.prod, e);
            self->send(self->state.parent, committed_atom_v, stored);
            if (then) then();
          },
          [=](caf::error& err) {
            // Without the log berth cannot keep its promises: let the supervisor restart us.
            spdlog::error("production {}: cannot record events: {}", self->state.project, to_string(err));
            self->quit(err);
          });
}

new_event event(self_ptr self, const std::string& type, const json& data) {
  return {project_stream(self->state.project), type, data.dump()};
}

void watch(self_ptr self) {
  auto p = self->state.prod.process;
  if (self->state.prod.status != "running" || p.pid == 0) return;
  auto gen = ++self->state.watch_generation;
  auto alive = self->state.alive;
  caf::actor me = caf::actor_cast<caf::actor>(self);
  self->spawn<caf::detached>([=](caf::event_based_actor* w) {
    for (;;) {
      auto info = driver().wait(handle_of(p), 1s);
      if (!alive->load()) break;  // a new incarnation adopts the process
      if (info.status != process_status::running) {
        w->send(me, process_exited{p.pid, p.start_time, info.exit_code, info.term_signal}, gen);
        break;
      }
    }
    w->quit();
  });
}

deploy_plan plan_for(self_ptr self) {
  auto& st = self->state;
  deploy_plan plan;
  plan.project = st.project;
  plan.spec = st.spec;
  plan.paths = st.paths;
  plan.env = production_env(st.spec, st.paths, st.project);
  plan.stable_port = st.stable_port;
  plan.stop_grace = std::chrono::milliseconds(st.settings.stop_grace_ms);
  return plan;
}

std::function<status(uint16_t)> route_setter(self_ptr self) {
  auto& st = self->state;
  proxy_route route{st.project + "-production", st.project, st.project + "." + st.settings.domain_suffix,
                    st.stable_port, 0};
  caf::actor_system* sys = &self->system();
  return [sys, route](uint16_t port) mutable -> status {
    auto proxy = names::whereis(*sys, names::proxy);
    if (!proxy) return status::io_error("the proxy is not running");
    route.upstream_port = port;
    status result = status::io_error("the proxy did not answer");
    caf::scoped_actor asker{*sys};
    asker->request(proxy, std::chrono::seconds(60), route_atom_v, route)
        .receive([&](bool) { result = status::ok(); },
                 [&](caf::error& err) { result = status::io_error(view(err).message); });
    return result;
  };
}

void release_port(self_ptr self, uint16_t port, const std::string& reason) {
  if (port != 0 && port != self->state.stable_port)
    caf::anon_send(names::whereis(self->system(), names::ports), release_atom_v, port, reason);
}

void start_current(self_ptr self, std::function<void(const std::string&)> done) {
  auto& st = self->state;
  auto plan = std::make_shared<deploy_plan>(plan_for(self));
  if (st.settings.proxy) plan->set_route = route_setter(self);
  auto started = std::make_shared<release_process>();
  auto result = std::make_shared<status>();
  auto hash = st.prod.current;
  auto launch = [=](uint16_t on_port) {
    run_blocking(
        self,
        [=] {
          *result = start_release(*plan, hash, on_port,
                                  std::chrono::milliseconds(plan->spec.production_health.interval_ms), started.get());
          if (*result && plan->set_route) {
            *result = plan->set_route(on_port);
            if (!*result) driver().stop(started->handle, plan->stop_grace);
          }
        },
        [=](const std::string& failure) {
          if (!failure.empty() || !*result) {
            auto why = failure.empty() ? result->message() : failure;
            release_port(self, on_port, "production start failed");
            append(self, {event(self, ev::production_exited, {{"reason", "cannot start: " + why}})},
                   [=] { done(why); });
            return;
          }
          append(self, {event(self, ev::production_started, process_json(*started))}, [=] {
            watch(self);
            arm_reconciler(self);
            done("");
          });
        });
  };
  if (!st.settings.proxy) return launch(st.stable_port);
  self->request(names::whereis(self->system(), names::ports), store_timeout, lease_atom_v, st.project,
                port_kind::candidate)
      .then([=](uint16_t spare) { launch(spare); },
            [=](caf::error& err) { done("no spare port: " + view(err).message); });
}

caf::result<bool> shut_down(self_ptr self, bool stop_apps, uint32_t grace_ms) {
  auto& st = self->state;
  st.stopping = true;
  st.stop_apps = stop_apps;
  ++st.restart_generation;  // no restarts from here on
  st.restart_pending = false;
  st.shutdown_rp = self->make_response_promise<bool>();
  auto rp = st.shutdown_rp;
  if (!st.job) {
    finish_shutdown(self);
    return rp;
  }
  // Past the grace the phase itself is cancelled: its waits give up, and it ends at once.
  auto job = st.job;
  self->delayed_send(self, std::chrono::milliseconds(grace_ms), phase_timeout_atom_v, job->job.id, job->next);
  return rp;
}

void finish_shutdown(self_ptr self) {
  auto& st = self->state;
  if (!st.shutdown_rp.pending()) return;
  if (!st.stop_apps || st.prod.status != "running") return st.shutdown_rp.deliver(true);
  // Stopped without an event: the log still says it should run, so the next start brings it back.
  ++st.watch_generation;
  auto process = st.prod.process;
  auto grace = std::chrono::milliseconds(st.settings.stop_grace_ms);
  run_blocking(
      self, [=] { driver().stop(handle_of(process), grace); },
      [=](const std::string&) { self->state.shutdown_rp.deliver(true); });
}

}  // namespace production_detail

namespace {

using namespace production_detail;
using json = nlohmann::json;

// Stops the production process (and, behind the proxy, takes its route away first).
caf::result<bool> stop_production(self_ptr self, const std::string& reason) {
  auto& prod = self->state.prod;
  ++self->state.restart_generation;  // a scheduled restart is off
  self->state.restart_pending = false;
  if (prod.status != "running") {
    if (prod.status != "exited" && prod.status != "crashed") return false;
    // Down already, but meant to run: it stays down now.
    auto rp = self->make_response_promise<bool>();
    append(self, {event(self, ev::production_stopped, {{"reason", reason}})}, [=]() mutable { rp.deliver(false); });
    return rp;
  }
  ++self->state.watch_generation;
  auto rp = self->make_response_promise<bool>();
  auto process = prod.process;
  auto grace = std::chrono::milliseconds(self->state.settings.stop_grace_ms);
  auto stop = [=]() mutable {
    run_blocking(
        self, [=] { driver().stop(handle_of(process), grace); },
        [=](const std::string&) mutable {
          release_port(self, process.port, "production stopped");
          append(self, {event(self, ev::production_stopped, {{"reason", reason}})}, [=]() mutable { rp.deliver(true); });
        });
  };
  auto proxy = names::whereis(self->system(), names::proxy);
  if (!self->state.settings.proxy || !proxy) {
    stop();
    return rp;
  }
  self->request(proxy, std::chrono::seconds(60), unroute_atom_v, self->state.project + "-production")
      .then([=](bool) mutable { stop(); }, [=](caf::error&) mutable { stop(); });
  return rp;
}

// Starts `current` again on request; this also ends a crash loop's `crashed`.
caf::result<bool> start_production(self_ptr self, manifest m, uint16_t port) {
  auto& st = self->state;
  st.spec = std::move(m);
  st.stable_port = port;
  if (st.prod.status == "running" && driver().is_ours(handle_of(st.prod.process))) return false;
  if (st.prod.current.empty()) return make_error(errc::conflict, "nothing has been deployed to production yet");
  ++st.restart_generation;
  st.restart_pending = false;
  st.restarts.clear();
  auto rp = self->make_response_promise<bool>();
  start_current(self, [=](const std::string& error) mutable {
    if (error.empty())
      rp.deliver(true);
    else
      rp.deliver(make_error(errc::unavailable, "cannot start production: " + error));
  });
  return rp;
}

}  // namespace

caf::behavior production_actor(self_ptr self, std::string project, project_paths paths,
                               deploy_settings settings, manifest spec, uint16_t stable_port,
                               caf::actor parent) {
  if (auto s = make_dirs({paths.production, paths.production_logs}); !s)
    throw std::runtime_error(s.message());
  auto& st = self->state;
  st.project = std::move(project);
  st.paths = std::move(paths);
  st.settings = std::move(settings);
  st.spec = std::move(spec);
  st.stable_port = stable_port;
  st.parent = std::move(parent);
  // Nothing is taken before the start-up reconciliation is done (a job's build must not be
  // swept as a stray): until then every message waits in the mailbox.
  auto main = caf::behavior{
      [=](job_atom, deployment_job& job, manifest& m, uint16_t port) {
        return run_job(self, std::move(job), std::move(m), port);
      },
      [=](cancel_atom, const std::string& id) {
        auto& job = self->state.job;
        if (!job || job->job.id != id) return false;
        job->cancel->store(true);
        return true;
      },
      [=](phase_timeout_atom, const std::string& id, size_t step) { on_phase_timeout(self, id, step); },
      [=](stop_atom, const std::string& reason) { return stop_production(self, reason); },
      [=](start_atom, manifest& m, uint16_t port) { return start_production(self, std::move(m), port); },
      [=](process_exited& x, uint64_t gen) {
        auto& prod = self->state.prod;
        if (gen != self->state.watch_generation || prod.status != "running" || x.pid != prod.process.pid)
          return;
        release_died(self, "the release " + describe(x));
      },
      [=](reconcile_atom) { on_reconcile_pass(self); },
      [=](retry_atom, uint64_t generation) { on_restart_due(self, generation); },
      [=](ready_atom) { return true; },
      [=](shutdown_atom, bool stop_apps, uint32_t grace_ms) { return shut_down(self, stop_apps, grace_ms); },
      [=](crash_atom) -> std::string { throw std::runtime_error("crash requested"); },
  };
  self->set_default_handler(caf::skip);
  self->request(names::whereis(self->system(), names::event_store), store_timeout, read_stream_atom_v,
                project_stream(st.project), uint64_t{0}, uint64_t{0})
      .await(
          [=](std::vector<event_record>& events) {
            project_state folded;
            for (auto& e : events) fold(folded, e);
            self->state.prod = folded.production;
            reconcile_at_start(self, [=] {
              self->set_default_handler(caf::print_and_drop);
              self->become(main);
            });
          },
          [=](caf::error& err) { self->quit(err); });
  return {[=](ready_atom) { return false; }};
}

}  // namespace berth
