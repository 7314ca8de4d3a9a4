// production:<name>'s job queue: deploys, rollbacks and stop/start, one at a time in arrival
// order (no global lock: each project has its own queue). A deployment is an event first
// (`deployment_queued`, durable), so a restarted production finds its queue again in the log.
#include <algorithm>

#include <spdlog/spdlog.h>

#include "actors/blocking.hpp"
#include "actors/names.hpp"
#include "actors/production_detail.hpp"
#include "messages/atoms.hpp"
#include "messages/errors.hpp"
#include "runtime/logs/logging.hpp"
#include "runtime/release/release.hpp"

namespace berth::production_detail {

using json = nlohmann::json;

namespace {

caf::error stopping_error() { return make_error(errc::unavailable, "berth is stopping; retry after it restarts"); }

// The phase a deployment was in before it began to roll back.
phase failed_phase(const deployment_record& d) {
  for (auto it = d.phases.rbegin(); it != d.phases.rend(); ++it)
    if (it->p != phase::rolling_back) return it->p;
  return d.current;
}

void finish_shutdown(self_ptr self) {
  auto& st = self->state;
  if (!st.shutdown_rp.pending()) return;
  if (!st.stop_apps || st.prod.status != "running") { st.shutdown_rp.deliver(true); return; }
  // Stopped without an event: the log still says it should run, so the next start brings it back.
  st.release.stop(std::chrono::milliseconds(st.env.settings.stop_grace_ms),
                  [self] { self->state.shutdown_rp.deliver(true); });
}

void job_finished(self_ptr self) {
  auto& st = self->state;
  st.job.reset();
  keep_what_the_log_says(self);
  st.release.hold(false);
  if (st.stopping) return finish_shutdown(self);
  pump(self);
}

// A pipeline that could not record its own end (the log refused it) ends here.
void ensure_ended(self_ptr self, const std::string& id, const std::string& why) {
  auto& ds = self->state.prod.deployments;
  auto it = ds.find(id);
  if (it == ds.end() || is_terminal(it->second.current)) return job_finished(self);
  deployment_error err{to_string(failed_phase(it->second)), why.empty() ? "the deploy ended unrecorded" : why,
                       "internal"};
  record(self, {phase_record(self, id, phase::failed, err.message, {}, &err)},
         true, [self](auto&) { job_finished(self); });
}

void run(self_ptr self, production_command cmd) {
  auto& st = self->state;
  st.job = running_job{};
  st.job->id = cmd.id;
  st.release.hold(true);  // no restart of the serving release starts while the job runs
  if (cmd.what == production_command::kind::deployment) {
    auto it = st.prod.deployments.find(cmd.id);
    if (it == st.prod.deployments.end() || it->second.current != phase::queued) return job_finished(self);
    return run_pipeline(self, cmd.id, [self, id = cmd.id](const std::string& why) { ensure_ended(self, id, why); });
  }
  auto rp = cmd.rp;
  if (cmd.what == production_command::kind::stop)
    return stop_release(self, "stopped by request", [self, rp]() mutable {
      rp.deliver(status_view(self));
      job_finished(self);
    });
  start_release_now(self, [self, rp](const std::string& error) mutable {
    if (error.empty())
      rp.deliver(status_view(self));
    else
      rp.deliver(make_error(self->state.prod.current.empty() ? errc::conflict : errc::unavailable, error));
    job_finished(self);
  });
}

}  // namespace

void pump(self_ptr self) {
  auto& st = self->state;
  if (st.job || st.stopping) return;
  if (st.queue.empty()) {
    auto waiting = std::move(st.when_idle);
    st.when_idle.clear();
    for (auto& then : waiting) then();
    return;
  }
  auto cmd = std::move(st.queue.front());
  st.queue.pop_front();
  run(self, std::move(cmd));
}

caf::result<deployment_view> enqueue(self_ptr self, deployment_job job) {
  auto& st = self->state;
  auto& p = st.prod;
  if (st.stopping) return stopping_error();
  // A container release may run its image's own CMD (its Dockerfile); without a Dockerfile
  // the docker driver's prepare() refuses a missing command.
  if (st.spec.production_command.empty() && !st.spec.containers())
    return make_error(errc::conflict, "the manifest has no production.command to run");
  if (job.kind == job_kind::rollback) {
    auto target = job.target.empty() ? previous_release(p) : job.target;
    if (target.empty()) return make_error(errc::conflict, "there is no previous release to roll back to");
    if (!valid_release_hash(target)) return make_error(errc::invalid_request, "hash: expected 12 hex chars");
    if (p.releases.count(target) == 0)
      return make_error(errc::not_found, "no kept release " + target + " (see production/history)");
    if (target == p.current && p.status == "running")
      return make_error(errc::conflict, "release " + target + " is already serving");
    job.target = target;
  }
  auto rp = self->make_response_promise<deployment_view>();
  record(self, {{project_stream(st.env.project), event_type(phase::queued), deployment_queued_data(job)}}, true,
         [self, rp](const std::vector<event_record>& stored) mutable {
           auto id = deployment_id(self->state.env.project, stored.front().seq);
           self->state.queue.push_back({production_command::kind::deployment, id, {}});
           rp.deliver(view_of(self, self->state.prod.deployments.at(id)));
           pump(self);
         });
  return rp;
}

caf::result<deployment_view> cancel(self_ptr self, const std::string& id) {
  auto& st = self->state;
  auto it = st.prod.deployments.find(id);
  if (it == st.prod.deployments.end()) return make_error(errc::not_found, "no deployment '" + id + "'");
  auto& d = it->second;
  if (is_terminal(d.current))
    return make_error(errc::conflict, "deployment " + id + " has already ended (" + d.status() + ")");
  auto rp = self->make_response_promise<deployment_view>();
  auto answer = [self, rp, id](auto&) mutable { rp.deliver(view_of(self, self->state.prod.deployments.at(id))); };
  if (d.current == phase::queued) {  // never started: it just ends
    auto& q = st.queue;
    q.erase(std::remove_if(q.begin(), q.end(), [&](auto& c) { return c.id == id; }), q.end());
    deployment_error err{"queued", "cancelled by request before it started", "cancelled"};
    record(self, {phase_record(self, id, phase::cancelled, err.message, {}, &err)},
           true, answer);
    return rp;
  }
  // Running: it stops at its next phase boundary (waits give up now) and compensates.
  record(self, {event(self, ev::deployment_cancel_requested, {{"id", id}})}, true,
         [self, id, answer](auto& stored) mutable {
           auto& job = self->state.job;
           if (job && job->id == id) job->stop->store(stop_request::cancel);
           answer(stored);
         });
  return rp;
}

caf::result<deployment_view> decide_canary(self_ptr self, const std::string& verdict, const std::string& id) {
  auto& st = self->state;
  auto it = st.prod.deployments.find(id);
  if (it == st.prod.deployments.end()) return make_error(errc::not_found, "no deployment '" + id + "'");
  if (verdict != "promote" && verdict != "abort") return make_error(errc::invalid_request, "no such verdict");
  auto& d = it->second;
  if (d.current != phase::canary || !st.job || st.job->id != id)
    return make_error(errc::conflict, "deployment " + id + " is not in its canary phase (it is " +
                                          (is_terminal(d.current) ? d.status() : to_string(d.current)) + ")");
  auto rp = self->make_response_promise<deployment_view>();
  // Durable first: the audit log says who decided before the pipeline acts on it.
  record(self, {event(self, ev::canary_verdict_requested, {{"id", id}, {"verdict", verdict}})}, true,
         [self, rp, id, verdict](auto&) mutable {
           auto& job = self->state.job;
           if (job && job->id == id)
             job->verdict->store(verdict == "promote" ? canary_verdict::promote : canary_verdict::abort);
           rp.deliver(view_of(self, self->state.prod.deployments.at(id)));
         });
  return rp;
}

caf::result<production_view> control(self_ptr self, production_command::kind what) {
  auto& st = self->state;
  if (st.stopping) return stopping_error();
  auto rp = self->make_response_promise<production_view>();
  st.queue.push_back({what, "", rp});
  pump(self);
  return rp;
}

void log_lines(self_ptr self, const std::string& id, std::vector<std::string>& lines) {
  auto& st = self->state;
  if (auto f = st.followers.find(id); f != st.followers.end())
    for (auto& follower : f->second) self->send(follower, log_lines_atom_v, id, lines);
}

caf::result<bool> delete_all(self_ptr self) {
  auto& st = self->state;
  std::vector<new_event> cancelled;
  deployment_error err{"queued", "the project was deleted before it started", "cancelled"};
  for (auto& cmd : st.queue) {
    if (cmd.what == production_command::kind::deployment)
      cancelled.push_back(phase_record(self, cmd.id, phase::cancelled, err.message, {}, &err));
    else
      cmd.rp.deliver(make_error(errc::conflict, "the project is being deleted"));
  }
  st.queue.clear();
  if (!cancelled.empty()) record(self, std::move(cancelled), true);
  if (st.job) st.job->stop->store(stop_request::cancel);
  // Once nothing runs, production stops; then the delete is answered.
  auto rp = self->make_response_promise<bool>();
  st.when_idle.push_back([self, rp]() mutable {
    stop_release(self, "project deleted", [self, rp]() mutable {
      auto proxy = names::whereis(self->system(), names::proxy);
      if (!proxy) { rp.deliver(true); return; }
      self->request(proxy, std::chrono::seconds(60), unroute_atom_v, self->state.env.project + "-production")
          .then([rp](bool) mutable { rp.deliver(true); }, [rp](caf::error&) mutable { rp.deliver(true); });
    });
  });
  pump(self);
  return rp;
}

caf::result<bool> shut_down(self_ptr self, bool stop_apps, uint32_t grace_ms) {
  auto& st = self->state;
  st.stopping = true;
  st.stop_apps = stop_apps;
  for (auto& cmd : st.queue)
    if (cmd.what != production_command::kind::deployment) cmd.rp.deliver(stopping_error());
  st.shutdown_rp = self->make_response_promise<bool>();
  auto rp = st.shutdown_rp;
  if (!st.job) {
    finish_shutdown(self);
    return rp;
  }
  // The running job ends at its next phase boundary; past the grace its phase gives up.
  st.job->stop->store(stop_request::shutdown);
  self->delayed_send(self, std::chrono::milliseconds(grace_ms), shutdown_atom_v);
  return rp;
}

new_event interrupted_end(self_ptr self, const deployment_record& d, const std::string& what) {
  auto in = std::string(to_string(failed_phase(d)));
  log_kv(spdlog::level::warn, "deployment interrupted: " + what, project_fields(self->state.env.project, d.id, in));
  if (d.activated)
    return phase_record(self, d.id, phase::completed, what + " during " + in + "; its release was already serving",
                        d.resources);
  deployment_error err{in, what + " while the deployment was running", "interrupted"};
  return phase_record(self, d.id, phase::failed, err.message, {}, &err);
}

}  // namespace berth::production_detail
