#include "actors/project_jobs.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "actors/names.hpp"
#include "messages/atoms.hpp"
#include "messages/errors.hpp"
#include "runtime/release.hpp"

namespace berth::project_jobs {

namespace {

using json = nlohmann::json;
constexpr auto store_timeout = std::chrono::seconds(30);

production_record& prod(self_ptr self) { return self->state.project.production; }

std::string local_url(self_ptr self) {
  return "http://127.0.0.1:" + std::to_string(self->state.project.production_port);
}

std::string public_url(self_ptr self) {
  auto& s = self->state.settings;
  return s.public_scheme + "://" + self->state.project.name + "." + s.domain_suffix;
}

// Appends, folds, then continues with the stored records (or delivers the error).
template <class Then>
void append(self_ptr self, std::vector<new_event> events, caf::response_promise rp, Then then) {
  self->request(names::whereis(self->system(), names::event_store), store_timeout, append_atom_v,
                std::move(events))
      .then(
          [=](std::vector<event_record>& stored) mutable {
            for (auto& e : stored) fold(self->state.project, e);
            then(stored);
          },
          [=](caf::error& err) mutable {
            if (rp.pending())
              rp.deliver(std::move(err));
            else
              spdlog::error("project {}: cannot record events: {}", self->state.project.name, to_string(err));
          });
}

json detail_json(self_ptr self, const deployment_record& d) {
  auto j = to_json(d);
  auto queued = queued_ids(prod(self));
  auto it = std::find(queued.begin(), queued.end(), d.id);
  j["position"] = it == queued.end() ? json(nullptr) : json(it - queued.begin() + 1);
  j["url"] = local_url(self);
  j["public_url"] = public_url(self);
  return j;
}

caf::expected<std::string> detail_of(self_ptr self, const std::string& id) {
  auto& ds = prod(self).deployments;
  auto it = ds.find(id);
  if (it == ds.end()) return make_error(errc::not_found, "no deployment '" + id + "'");
  return detail_json(self, it->second).dump();
}

}  // namespace

json production_status(self_ptr self) {
  auto& p = prod(self);
  json j{{"env", "production"},
         {"status", p.status},
         {"current", p.current.empty() ? json(nullptr) : json(p.current)},
         {"port", self->state.project.production_port},
         {"url", local_url(self)},
         {"public_url", public_url(self)},
         {"pid", p.status == "running" ? json(p.process.pid) : json(nullptr)},
         {"releases", p.releases.size()},
         {"queued", queued_ids(p).size()},
         {"running", self->state.running.empty() ? json(nullptr) : json(self->state.running)}};
  if (!p.reason.empty()) j["reason"] = p.reason;
  return j;
}

namespace {

void pump(self_ptr self);

void job_done(self_ptr self) {
  auto& st = self->state;
  ++st.job_generation;
  st.busy = false;
  st.running.clear();
  pump(self);
}

// The phase a deployment was in before it began to roll back.
phase failed_phase(const deployment_record& d) {
  for (auto it = d.phases.rbegin(); it != d.phases.rend(); ++it)
    if (it->p != phase::rolling_back) return it->p;
  return d.current;
}

// The rule for a deployment whose job died with berth or with production:<name>: once its
// release was activated it serves, so the deployment is `completed` (the old release, which
// was draining, is stopped by production's start-up reconciliation); before that, it ends
// `failed` with code `interrupted`, and the reconciliation stops its candidate or build and
// removes what it half-made, while the release that served keeps (or goes back to) serving.
new_event interrupted_end(self_ptr self, const deployment_record& d, const std::string& what) {
  auto stream = project_stream(self->state.project.name);
  auto in = std::string(to_string(failed_phase(d)));
  spdlog::warn("project {}: deployment {} was interrupted in {}", self->state.project.name, d.id, in);
  if (d.activated)
    return {stream, event_type(phase::completed),
            phase_event_data(d.id, what + " during " + in + "; its release was already serving", d.resources)};
  deployment_error err{in, what + " while the deployment was running", "interrupted"};
  return {stream, event_type(phase::failed), phase_event_data(d.id, err.message, json::object(), &err)};
}

// Records how a deployment ended when production could not say so itself.
void end_deployment(self_ptr self, const std::string& id, phase end, const std::string& code,
                    const std::string& message) {
  auto& ds = prod(self).deployments;
  auto it = ds.find(id);
  if (it == ds.end() || is_terminal(it->second.current)) return job_done(self);
  new_event ending = code == "interrupted" ? interrupted_end(self, it->second, message)
                                           : new_event{project_stream(self->state.project.name), event_type(end), ""};
  if (code != "interrupted") {
    deployment_error err{to_string(failed_phase(it->second)), message, code};
    ending.data = phase_event_data(id, message, json::object(), &err);
  }
  append(self, {std::move(ending)}, caf::response_promise{}, [=](auto&) { job_done(self); });
}

void run_deployment(self_ptr self, const std::string& id) {
  auto& st = self->state;
  auto it = prod(self).deployments.find(id);
  if (it == prod(self).deployments.end() || it->second.current != phase::queued) return job_done(self);
  auto production = st.sup.which_child("production");
  if (!production)
    return end_deployment(self, id, phase::failed, "unavailable", "production is restarting; deploy again");
  auto& d = it->second;
  deployment_job job{d.id, d.kind, d.force, d.target, {}};
  for (auto& queued : queued_ids(prod(self)))  // a queued rollback's release must survive retention
    if (auto& q = prod(self).deployments.at(queued); q.kind == job_kind::rollback) job.in_use.push_back(q.target);
  st.running = id;
  auto gen = st.job_generation;
  self->request(production, caf::infinite, job_atom_v, job, st.project.spec, st.project.production_port)
      .then([=](std::string&) { if (gen == self->state.job_generation) job_done(self); },
            [=](caf::error& err) {
              if (gen != self->state.job_generation) return;
              // production died mid-job; its restart reconciles the processes.
              end_deployment(self, id, phase::failed, "interrupted",
                             "production stopped (" + view(err).message + ")");
            });
}

void run_control(self_ptr self, queued_command cmd) {
  auto production = self->state.sup.which_child("production");
  if (!production) {
    cmd.rp.deliver(make_error(errc::unavailable, "production is restarting; retry"));
    return job_done(self);
  }
  auto gen = self->state.job_generation;
  self->state.control_rp = cmd.rp;
  auto reply = [=](bool) mutable {
    if (gen != self->state.job_generation) return;
    cmd.rp.deliver(production_status(self).dump());
    job_done(self);
  };
  auto fail = [=](caf::error& err) mutable {
    if (gen != self->state.job_generation) return;
    cmd.rp.deliver(err);
    job_done(self);
  };
  if (cmd.what == queued_command::kind::stop)
    self->request(production, caf::infinite, stop_atom_v, std::string{"stopped by request"}).then(reply, fail);
  else
    self->request(production, caf::infinite, start_atom_v, self->state.project.spec,
                  self->state.project.production_port)
        .then(reply, fail);
}

void pump(self_ptr self) {
  auto& st = self->state;
  if (st.busy || st.stopping) return;
  if (st.queue.empty()) {
    auto waiting = std::move(st.when_idle);
    st.when_idle.clear();
    for (auto& f : waiting) f();
    return;
  }
  auto cmd = std::move(st.queue.front());
  st.queue.pop_front();
  st.busy = true;
  if (cmd.what == queued_command::kind::deployment)
    run_deployment(self, cmd.id);
  else
    run_control(self, std::move(cmd));
}

caf::result<std::string> enqueue(self_ptr self, deployment_job job) {
  if (self->state.stopping) return make_error(errc::unavailable, "berth is stopping; retry after it restarts");
  auto rp = self->make_response_promise<std::string>();
  append(self, {{project_stream(self->state.project.name), event_type(phase::queued), deployment_queued_data(job)}},
         rp, [=](std::vector<event_record>& stored) mutable {
           auto id = deployment_id(self->state.project.name, stored.front().seq);
           self->state.queue.push_back({queued_command::kind::deployment, id, {}});
           rp.deliver(detail_json(self, prod(self).deployments.at(id)).dump());
           pump(self);
         });
  return rp;
}

}  // namespace

void resume(self_ptr self) {
  auto& p = prod(self);
  for (auto& id : p.order) {
    auto& d = p.deployments.at(id);
    if (d.current == phase::queued) {
      self->state.queue.push_back({queued_command::kind::deployment, id, {}});
    } else if (!is_terminal(d.current)) {
      append(self, {interrupted_end(self, d, "berth stopped")}, caf::response_promise{}, [](auto&) {});
    }
  }
  // The leases of candidates the interrupted jobs held (behind the proxy, the live release
  // runs on one of these spare ports: it keeps it).
  uint16_t live = p.status == "running" ? p.process.port : 0;
  caf::anon_send(names::whereis(self->system(), names::ports), release_atom_v, self->state.project.name,
                 port_kind::candidate, std::string{"job interrupted"}, live);
  // The preview's host route (behind the proxy); the proxy ignores a route it already has.
  if (self->state.settings.proxy)
    if (auto proxy = names::whereis(self->system(), names::proxy)) {
      auto& pr = self->state.project;
      caf::anon_send(proxy, route_atom_v,
                     proxy_route{pr.name + "-preview", pr.name, pr.name + "-preview." + self->state.settings.domain_suffix,
                                 0, pr.preview_port});
    }
  pump(self);
}

caf::result<std::string> deploy(self_ptr self, bool force) {
  auto& spec = self->state.project.spec;
  if (spec.production_command.empty())
    return make_error(errc::conflict, "the manifest has no production.command to run");
  return enqueue(self, {"", job_kind::deploy, force, "", {}});
}

caf::result<std::string> rollback(self_ptr self, const std::string& hash) {
  auto& p = prod(self);
  if (self->state.project.spec.production_command.empty())
    return make_error(errc::conflict, "the manifest has no production.command to run");
  auto target = hash.empty() ? previous_release(p) : hash;
  if (target.empty()) return make_error(errc::conflict, "there is no previous release to roll back to");
  if (!valid_release_hash(target)) return make_error(errc::invalid_request, "hash: expected 12 hex chars");
  if (p.releases.count(target) == 0)
    return make_error(errc::not_found, "no kept release " + target + " (see production/history)");
  if (target == p.current && p.status == "running")
    return make_error(errc::conflict, "release " + target + " is already serving");
  return enqueue(self, {"", job_kind::rollback, false, target, {}});
}

caf::result<std::string> production(self_ptr self, const std::string& action) {
  if (action == "status") return production_status(self).dump();
  if (action == "history") return history_json(prod(self)).dump();
  if (action != "stop" && action != "start")
    return make_error(errc::not_found, "unknown production action '" + action + "'");
  if (self->state.stopping) return make_error(errc::unavailable, "berth is stopping; retry after it restarts");
  auto rp = self->make_response_promise<std::string>();
  auto what = action == "stop" ? queued_command::kind::stop : queued_command::kind::start;
  self->state.queue.push_back({what, "", rp});
  pump(self);
  return rp;
}

caf::result<std::string> detail(self_ptr self, const std::string& id) {
  auto d = detail_of(self, id);
  if (!d) return std::move(d.error());
  return std::move(*d);
}

caf::result<std::string> cancel(self_ptr self, const std::string& id) {
  auto& ds = prod(self).deployments;
  auto it = ds.find(id);
  if (it == ds.end()) return make_error(errc::not_found, "no deployment '" + id + "'");
  auto& d = it->second;
  if (is_terminal(d.current))
    return make_error(errc::conflict, "deployment " + id + " has already ended (" + d.status() + ")");
  auto rp = self->make_response_promise();
  auto stream = project_stream(self->state.project.name);
  if (d.current == phase::queued) {  // never started: it just ends
    auto& q = self->state.queue;
    q.erase(std::remove_if(q.begin(), q.end(), [&](auto& c) { return c.id == id; }), q.end());
    deployment_error err{"queued", "cancelled by request before it started", "cancelled"};
    append(self, {{stream, event_type(phase::cancelled), phase_event_data(id, err.message, json::object(), &err)}},
           rp, [=](auto&) mutable { rp.deliver(detail_of(self, id)); });
    return rp;
  }
  // Running: production stops it at the next phase boundary and compensates.
  append(self, {{stream, ev::deployment_cancel_requested, json{{"id", id}}.dump()}}, rp,
         [=](auto&) mutable {
           if (auto production = self->state.sup.which_child("production"))
             caf::anon_send(production, cancel_atom_v, id);
           rp.deliver(detail_of(self, id));
         });
  return rp;
}

caf::result<std::string> shut_down(self_ptr self, bool stop_apps, uint32_t grace_ms) {
  auto& st = self->state;
  st.stopping = true;
  for (auto& cmd : st.queue)
    if (cmd.what != queued_command::kind::deployment)
      cmd.rp.deliver(make_error(errc::unavailable, "berth is stopping; retry after it restarts"));
  auto rp = self->make_response_promise<std::string>();
  auto pending = std::make_shared<int>(2);
  auto done = [=]() mutable {
    if (--*pending == 0) rp.deliver(std::string{"stopped"});
  };
  auto limit = std::chrono::milliseconds(grace_ms) + std::chrono::seconds(30);
  if (auto production = st.sup.which_child("production"))
    self->request(production, limit, shutdown_atom_v, stop_apps, grace_ms)
        .then([=](bool) mutable { done(); }, [=](caf::error&) mutable { done(); });
  else
    done();
  if (auto preview = st.sup.which_child("preview"))
    self->request(preview, limit, shutdown_atom_v, stop_apps)
        .then([=](bool) mutable { done(); }, [=](caf::error&) mutable { done(); });
  else
    done();
  return rp;
}

void production_restarted(self_ptr self) {
  auto& st = self->state;
  if (!st.busy) return;
  if (!st.running.empty())
    return end_deployment(self, st.running, phase::failed, "interrupted", "production was restarted");
  if (st.control_rp.pending()) st.control_rp.deliver(make_error(errc::unavailable, "production was restarted; retry"));
  job_done(self);
}

void committed(self_ptr self, const std::vector<event_record>& events) {
  for (auto& e : events) fold(self->state.project, e);
}

caf::result<std::string> stop_everything(self_ptr self) {
  auto& st = self->state;
  auto rp = self->make_response_promise<std::string>();
  // Queued commands end now; the running one is cancelled and compensated.
  std::vector<new_event> cancelled;
  deployment_error err{"queued", "the project was deleted before it started", "cancelled"};
  for (auto& cmd : st.queue) {
    if (cmd.what == queued_command::kind::deployment)
      cancelled.push_back({project_stream(st.project.name), event_type(phase::cancelled),
                           phase_event_data(cmd.id, err.message, json::object(), &err)});
    else
      cmd.rp.deliver(make_error(errc::conflict, "the project is being deleted"));
  }
  st.queue.clear();
  if (!cancelled.empty()) append(self, std::move(cancelled), caf::response_promise{}, [](auto&) {});
  if (!st.running.empty())
    if (auto production = st.sup.which_child("production")) caf::anon_send(production, cancel_atom_v, st.running);
  st.when_idle.push_back([=]() mutable {
    if (auto proxy = names::whereis(self->system(), names::proxy))
      for (const char* env : {"-preview", "-production"})
        caf::anon_send(proxy, unroute_atom_v, self->state.project.name + env);
    auto pending = std::make_shared<int>(2);
    auto done = [=]() mutable {
      if (--*pending == 0) rp.deliver(std::string{"stopped"});
    };
    auto production = self->state.sup.which_child("production");
    auto preview = self->state.sup.which_child("preview");
    if (production)
      self->request(production, std::chrono::seconds(60), stop_atom_v, std::string{"project deleted"})
          .then([=](bool) mutable { done(); }, [=](caf::error&) mutable { done(); });
    else
      done();
    if (preview)
      self->request(preview, std::chrono::seconds(60), stop_atom_v)
          .then([=](std::string&) mutable { done(); }, [=](caf::error&) mutable { done(); });
    else
      done();
  });
  pump(self);
  return rp;
}

}  // namespace berth::project_jobs
