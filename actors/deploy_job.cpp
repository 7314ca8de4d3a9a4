// The deploy and rollback jobs of production:<name>, phase by phase (see deploy_phases).
#include <algorithm>

#include <spdlog/spdlog.h>

#include "actors/blocking.hpp"
#include "actors/names.hpp"
#include "actors/production_support.hpp"
#include "messages/atoms.hpp"
#include "messages/errors.hpp"

namespace berth::production_detail {

namespace {

using json = nlohmann::json;

// The deploy, top to bottom. Each phase's event is written before the phase runs; between
// phases the actor checks for a cancel; a failure anywhere compensates in reverse order.
const std::vector<phase_step> deploy_phases{
    {phase::preparing, "snapshotting the source", prepare_source},
    {phase::building, "building", run_build},
    {phase::packaging, "packaging the artifacts", package_artifacts},
    {phase::starting, "starting the candidate on a spare port", start_candidate},
    {phase::health_checking, "checking the candidate's health", check_candidate},
    {phase::switching, "moving the stable port to the new release", switch_traffic},
    {phase::draining, "stopping the candidate and cleaning up", drain},
};

// Proxy mode differs in the last two phases: the proxy's upstream flips to the candidate,
// which keeps running as the release; the old release drains, then stops.
const std::vector<phase_step> proxy_deploy_phases{
    deploy_phases[0], deploy_phases[1], deploy_phases[2], deploy_phases[3], deploy_phases[4],
    {phase::switching, "pointing the proxy at the new release", switch_through_proxy},
    {phase::draining, "draining the old release", drain_after_proxy_switch},
};

// A rollback is the same job from `starting`, with a release that is already on disk.
const std::vector<phase_step> rollback_phases(deploy_phases.begin() + 3, deploy_phases.end());
const std::vector<phase_step> proxy_rollback_phases(proxy_deploy_phases.begin() + 3, proxy_deploy_phases.end());

const std::vector<phase_step>* phases_for(const production_state& st, job_kind kind) {
  if (st.settings.proxy) return kind == job_kind::rollback ? &proxy_rollback_phases : &proxy_deploy_phases;
  return kind == job_kind::rollback ? &rollback_phases : &deploy_phases;
}

// The release serving right now (none when production is down). Read again before the switch:
// a restart of a release that had died may have completed while the candidate was checked.
release_process serving_now(const production_state& st) {
  if (st.prod.status != "running") return {};
  auto port = st.prod.process.port ? st.prod.process.port : st.stable_port;
  return {st.prod.current, handle_of(st.prod.process), port};
}

void end_job(self_ptr self, const std::string& final_status) {
  auto job = self->state.job;
  self->state.job.reset();
  auto& plan = job->plan;
  // The candidate's port goes back, unless the candidate became the release behind the proxy:
  // then the old release's spare port does.
  bool kept = plan.proxy && job->out->switched;
  auto port = kept ? plan.serving.port : plan.candidate_port;
  if (port != 0 && port != plan.stable_port)
    caf::anon_send(names::whereis(self->system(), names::ports), release_atom_v, port,
                   std::string{(kept ? "old release of " : "candidate of ") + job->job.id});
  job->log->line("deployment " + final_status);
  job->rp.deliver(final_status);
  if (self->state.stopping) return finish_shutdown(self);
  arm_reconciler(self);  // a release that died during the job is restarted now
}

// Compensates what the job created, newest first, then records how it ended.
void roll_back(self_ptr self, std::string code, std::string message) {
  auto job = self->state.job;
  auto failed_in = job->current;
  bool cancelled = code == "cancelled";
  job->log->line("rolling back: " + message);
  append(self, {event(self, event_type(phase::rolling_back),
                      json::parse(phase_event_data(job->job.id, "rolling back: " + message)))},
         [=] {
           bool had_new_release = job->out->packaged_new;
           run_blocking(
               self, [job] { compensate(job->plan, *job->out, *job->log); },
               [=](const std::string& failure) {
                 if (!failure.empty()) job->log->line("error: " + failure);
                 std::vector<new_event> events = std::move(job->pending);
                 // A release_packaged still pending was never recorded: drop it, nothing to undo.
                 auto unrecorded = std::remove_if(events.begin(), events.end(),
                                                  [](auto& e) { return e.type == ev::release_packaged; });
                 bool recorded = unrecorded == events.end();
                 events.erase(unrecorded, events.end());
                 if (had_new_release && recorded && !job->out->packaged_new)
                   events.push_back(event(self, ev::release_removed,
                                          {{"hash", job->out->hash}, {"reason", "its deployment " + job->job.id + " failed"}}));
                 auto& back = job->out->promoted;
                 if (back.running() && back.hash == job->plan.current)  // the old release came back
                   events.push_back(event(self, ev::production_started, process_json(back)));
                 else if (job->out->old_stopped)
                   events.push_back(event(self, ev::production_exited,
                                          {{"reason", "the previous release did not come back"}}));
                 deployment_error err{to_string(failed_in), message, code};
                 auto end = cancelled ? phase::cancelled : phase::failed;
                 events.push_back(event(self, event_type(end),
                                        json::parse(phase_event_data(job->job.id, message,
                                                                     job->out->resources(job->plan), &err))));
                 append(self, std::move(events), [=] {
                   watch(self);
                   end_job(self, cancelled ? "cancelled" : "failed");
                 });
               });
         });
}

void prune(self_ptr self, std::function<void()> then) {
  auto doomed = releases_to_prune(self->state.prod, self->state.spec.keep, self->state.job->job.in_use);
  if (doomed.empty()) return then();
  auto removed = std::make_shared<std::vector<std::string>>();
  auto paths = self->state.paths;
  run_blocking(
      self, [=] { *removed = prune_releases(paths, doomed); },
      [=](const std::string&) {
        std::vector<new_event> events;
        for (auto& h : *removed)
          events.push_back(event(self, ev::release_pruned,
                                 {{"hash", h}, {"reason", "retention keeps " +
                                                              std::to_string(self->state.spec.keep)}}));
        if (events.empty()) return then();
        append(self, std::move(events), then);
      });
}

void finish(self_ptr self, phase end) {
  auto job = self->state.job;
  auto& out = *job->out;
  std::string message =
      end == phase::unchanged
          ? "release " + out.hash + " is already current; nothing was changed"
          : (job->job.kind == job_kind::rollback ? "rolled back to " : "deployed ") + out.hash +
                " on port " + std::to_string(job->plan.stable_port) +
                (out.gap_ms >= 0 ? " (switch gap " + std::to_string(out.gap_ms) + " ms)" : "");
  std::vector<new_event> events = std::move(job->pending);
  events.push_back(event(self, event_type(end),
                         json::parse(phase_event_data(job->job.id, message, out.resources(job->plan)))));
  auto workspace = out.workspace;
  append(self, std::move(events), [=] {
    if (end == phase::unchanged) {  // the workspace is all it made
      run_blocking(
          self, [workspace] { std::error_code ec; std::filesystem::remove_all(workspace, ec); },
          [=](const std::string&) { end_job(self, "unchanged"); });
      return;
    }
    prune(self, [=] { end_job(self, "completed"); });
  });
}

// How long a phase may take: the build and the health check have their own limits (enforced
// inside the step); the guard adds slack to those and caps every other phase.
std::chrono::seconds phase_limit(self_ptr self, phase p) {
  auto& st = self->state;
  auto& health = st.spec.production_health;
  if (p == phase::building) return std::chrono::seconds(st.settings.build_timeout_s + 30);
  if (p == phase::health_checking || p == phase::switching)
    return std::chrono::seconds(health.timeout_s + health.min_healthy_s + 30);
  if (p == phase::draining && st.settings.proxy)
    return std::chrono::seconds(st.settings.drain_ms / 1000 + st.settings.phase_timeout_s);
  return std::chrono::seconds(st.settings.phase_timeout_s);
}

void next_phase(self_ptr self) {
  auto job = self->state.job;
  auto& out = *job->out;
  // Once the new release serves, the deploy is done: a late cancel changes nothing.
  if (self->state.stopping && !out.switched) return roll_back(self, "interrupted", "berth is stopping");
  if (job->cancel->load() && !out.switched) return roll_back(self, "cancelled", "cancelled by request");
  if (job->next == job->phases->size()) return finish(self, phase::completed);
  const auto& step = (*job->phases)[job->next++];
  job->current = step.p;
  job->log->line(std::string("phase ") + to_string(step.p) + ": " + step.message);
  if (step.p == phase::switching) {
    ++self->state.watch_generation;  // the old release stops on purpose
    job->plan.serving = serving_now(self->state);
  }
  std::vector<new_event> events = std::move(job->pending);
  job->pending.clear();
  events.push_back(event(self, event_type(step.p),
                         json::parse(phase_event_data(job->job.id, step.message, out.resources(job->plan)))));
  append(self, std::move(events), [=] {
    // The guard: past the limit the job is cancelled (waits inside the step give up) and
    // fails with code `timeout` once the step returns.
    self->delayed_send(self, phase_limit(self, step.p), phase_timeout_atom_v, job->job.id, job->next);
    run_blocking(
        self, [job, run = step.run] { run(job->plan, *job->out, *job->log); },
        [=](const std::string& failure) {
          auto& out = *job->out;
          if (!failure.empty()) return roll_back(self, "internal", failure);
          if (job->timed_out && !out.switched && self->state.stopping)
            return roll_back(self, "interrupted", "berth is stopping");
          if (job->timed_out && !out.switched)
            return roll_back(self, "timeout",
                             std::string(to_string(step.p)) + " did not finish within " +
                                 std::to_string(phase_limit(self, step.p).count()) + " s");
          if (!out.error_code.empty()) return roll_back(self, out.error_code, out.message);
          if (out.unchanged) return finish(self, phase::unchanged);
          if (step.p == phase::packaging && out.packaged_new)
            job->pending.push_back(event(self, ev::release_packaged, {{"hash", out.hash}, {"deployment", job->job.id}}));
          if (step.p == phase::switching && out.switched) {
            auto activated = process_json(out.promoted);
            activated["deployment"] = job->job.id;
            activated["kind"] = to_string(job->job.kind);
            activated["previous"] = job->plan.current;
            // Recorded at once: from here on the new release is what production serves.
            return append(self, {event(self, ev::release_activated, activated)}, [=] {
              self->state.restarts.clear();  // a new release: a fresh crash-loop budget
              watch(self);
              next_phase(self);
            });
          }
          next_phase(self);
        });
  });
}

}  // namespace

caf::result<std::string> run_job(self_ptr self, deployment_job job, manifest spec, uint16_t port) {
  auto& st = self->state;
  if (st.job) return make_error(errc::conflict, "a job is already running");
  st.spec = std::move(spec);
  st.stable_port = port;
  auto run = std::make_shared<production_job>();
  run->job = job;
  run->rp = self->make_response_promise();
  run->log = std::make_shared<deploy_log>(st.paths.deployment_log(job.id));
  run->phases = phases_for(st, job.kind);
  auto& plan = run->plan;
  plan = plan_for(self);
  plan.id = job.id;
  plan.force = job.force;
  plan.target = job.target;
  plan.current = st.prod.current;
  plan.serving = serving_now(st);
  plan.build_timeout = std::chrono::seconds(st.settings.build_timeout_s);
  plan.cancelled = [flag = run->cancel] { return flag->load(); };
  if (st.settings.proxy) {
    plan.proxy = true;
    plan.drain = std::chrono::milliseconds(st.settings.drain_ms);
    plan.set_route = route_setter(self);
  }
  if (job.kind == job_kind::rollback) run->out->hash = job.target;
  st.job = run;
  auto rp = run->rp;
  make_dirs({st.paths.production_logs});
  // A spare port for the candidate, leased like any other so nothing else takes it.
  self->request(names::whereis(self->system(), names::ports), store_timeout, lease_atom_v,
                st.project, port_kind::candidate)
      .then([=](uint16_t candidate) {
              run->plan.candidate_port = candidate;
              next_phase(self);
            },
            [=](caf::error& err) {
              run->current = run->phases->front().p;
              roll_back(self, "ports_exhausted", "no spare port for the candidate: " + view(err).message);
            });
  return rp;
}

void on_phase_timeout(self_ptr self, const std::string& id, size_t step) {
  auto& job = self->state.job;
  if (!job || job->job.id != id || job->next != step || job->timed_out) return;
  job->timed_out = true;
  job->cancel->store(true);
  job->log->line(std::string("phase ") + to_string(job->current) + " ran out of time");
}

}  // namespace berth::production_detail
