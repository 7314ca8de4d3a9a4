#include "actors/production.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "actors/blocking.hpp"
#include "actors/names.hpp"
#include "messages/atoms.hpp"
#include "messages/errors.hpp"
#include "messages/project_state.hpp"

namespace berth {

namespace {

using self_ptr = caf::stateful_actor<production_state>*;
using json = nlohmann::json;
using namespace std::chrono_literals;
constexpr auto store_timeout = 30s;

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

// A rollback is the same job from `starting`, with a release that is already on disk.
const std::vector<phase_step> rollback_phases(deploy_phases.begin() + 3, deploy_phases.end());

process_driver& driver() {
  static process_driver d;
  return d;
}

process_handle handle_of(const preview_launched& p) { return {p.pid, p.start_time, p.pgid}; }

json process_json(const release_process& p) {
  return {{"hash", p.hash}, {"pid", p.handle.pid}, {"start_time", p.handle.start_time},
          {"pgid", p.handle.pgid}, {"port", p.port}};
}

// Appends, folds into our state, tells the parent, then continues.
void append(self_ptr self, std::vector<new_event> events, std::function<void()> then = {}) {
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

// Waits for the production process to end off the scheduler, then tells us.
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

void end_job(self_ptr self, const std::string& final_status) {
  auto job = self->state.job;
  self->state.job.reset();
  auto port = job->plan.candidate_port;
  if (port != 0)
    caf::anon_send(names::whereis(self->system(), names::ports), release_atom_v, port,
                   std::string{"candidate of " + job->job.id});
  job->log->line("deployment " + final_status);
  job->rp.deliver(final_status);
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
  auto doomed = releases_to_prune(self->state.prod, self->state.spec.keep, {});
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

void next_phase(self_ptr self) {
  auto job = self->state.job;
  auto& out = *job->out;
  // Once the new release serves, the deploy is done: a late cancel changes nothing.
  if (job->cancel->load() && !out.switched) return roll_back(self, "cancelled", "cancelled by request");
  if (job->next == job->phases->size()) return finish(self, phase::completed);
  const auto& step = (*job->phases)[job->next++];
  job->current = step.p;
  job->log->line(std::string("phase ") + to_string(step.p) + ": " + step.message);
  if (step.p == phase::switching) ++self->state.watch_generation;  // the old release stops on purpose
  std::vector<new_event> events = std::move(job->pending);
  job->pending.clear();
  events.push_back(event(self, event_type(step.p),
                         json::parse(phase_event_data(job->job.id, step.message, out.resources(job->plan)))));
  append(self, std::move(events), [=] {
    run_blocking(
        self, [job, run = step.run] { run(job->plan, *job->out, *job->log); },
        [=](const std::string& failure) {
          auto& out = *job->out;
          if (!failure.empty()) return roll_back(self, "internal", failure);
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
              watch(self);
              next_phase(self);
            });
          }
          next_phase(self);
        });
  });
}

caf::result<std::string> run_job(self_ptr self, deployment_job job, manifest spec, uint16_t port) {
  auto& st = self->state;
  if (st.job) return make_error(errc::conflict, "a job is already running");
  st.spec = spec;
  st.stable_port = port;
  auto run = std::make_shared<production_job>();
  run->job = job;
  run->rp = self->make_response_promise();
  run->log = std::make_shared<deploy_log>(st.paths.deployment_log(job.id));
  run->phases = job.kind == job_kind::rollback ? &rollback_phases : &deploy_phases;
  auto& plan = run->plan;
  plan.project = st.project;
  plan.id = job.id;
  plan.spec = std::move(spec);
  plan.paths = st.paths;
  plan.env = production_env(plan.spec, plan.paths, plan.project);
  plan.force = job.force;
  plan.target = job.target;
  plan.current = st.prod.current;
  if (st.prod.status == "running")
    plan.serving = {st.prod.current, handle_of(st.prod.process), port};
  plan.stable_port = port;
  plan.build_timeout = std::chrono::seconds(st.settings.build_timeout_s);
  plan.stop_grace = std::chrono::milliseconds(st.settings.stop_grace_ms);
  plan.cancelled = [flag = run->cancel] { return flag->load(); };
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

// Reconciles with the world after a (re)start: adopt our process, or bring `current` back.
void adopt(self_ptr self) {
  auto& prod = self->state.prod;
  if (prod.status != "running") return;
  if (driver().is_ours(handle_of(prod.process))) {
    spdlog::info("production {}: adopted release {} (pid {})", self->state.project, prod.current, prod.process.pid);
    return watch(self);
  }
  caf::anon_send(caf::actor_cast<caf::actor>(self), start_atom_v, self->state.spec, self->state.stable_port);
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
  self->request(names::whereis(self->system(), names::event_store), store_timeout, read_stream_atom_v,
                project_stream(st.project), uint64_t{0}, uint64_t{0})
      .await(
          [=](std::vector<event_record>& events) {
            project_state folded;
            for (auto& e : events) fold(folded, e);
            self->state.prod = folded.production;
            adopt(self);
          },
          [=](caf::error& err) { self->quit(err); });
  return {
      [=](job_atom, deployment_job& job, manifest& m, uint16_t port) {
        return run_job(self, std::move(job), std::move(m), port);
      },
      [=](cancel_atom, const std::string& id) {
        auto& job = self->state.job;
        if (!job || job->job.id != id) return false;
        job->cancel->store(true);
        return true;
      },
      [=](stop_atom, const std::string& reason) -> caf::result<bool> {
        auto& prod = self->state.prod;
        if (prod.status != "running") return false;
        ++self->state.watch_generation;
        auto rp = self->make_response_promise<bool>();
        auto handle = handle_of(prod.process);
        auto grace = std::chrono::milliseconds(self->state.settings.stop_grace_ms);
        run_blocking(
            self, [=] { driver().stop(handle, grace); },
            [=](const std::string&) mutable {
              append(self, {event(self, ev::production_stopped, {{"reason", reason}})},
                     [=]() mutable { rp.deliver(true); });
            });
        return rp;
      },
      [=](start_atom, manifest& m, uint16_t port) -> caf::result<bool> {
        auto& st = self->state;
        st.spec = std::move(m);
        st.stable_port = port;
        if (st.prod.status == "running" && driver().is_ours(handle_of(st.prod.process))) return false;
        if (st.prod.current.empty())
          return make_error(errc::conflict, "nothing has been deployed to production yet");
        auto rp = self->make_response_promise<bool>();
        auto plan = std::make_shared<deploy_plan>(plan_for(self));
        auto started = std::make_shared<release_process>();
        auto result = std::make_shared<status>();
        auto hash = st.prod.current;
        run_blocking(
            self,
            [=] {
              *result = start_release(*plan, hash, plan->stable_port,
                                      std::chrono::milliseconds(plan->spec.production_health.interval_ms),
                                      started.get());
            },
            [=](const std::string& failure) mutable {
              if (!failure.empty() || !*result) {
                auto why = failure.empty() ? result->message() : failure;
                append(self, {event(self, ev::production_exited, {{"reason", "cannot start: " + why}})},
                       [=]() mutable { rp.deliver(make_error(errc::unavailable, "cannot start production: " + why)); });
                return;
              }
              append(self, {event(self, ev::production_started, process_json(*started))}, [=]() mutable {
                watch(self);
                rp.deliver(true);
              });
            });
        return rp;
      },
      [=](process_exited& x, uint64_t gen) {
        auto& prod = self->state.prod;
        if (gen != self->state.watch_generation || prod.status != "running" || x.pid != prod.process.pid)
          return;
        spdlog::warn("production {}: release {} {}", self->state.project, prod.current, describe(x));
        append(self, {event(self, ev::production_exited, {{"reason", "the release " + describe(x)}})});
      },
      [=](crash_atom) -> std::string { throw std::runtime_error("crash requested"); },
  };
}

}  // namespace berth
