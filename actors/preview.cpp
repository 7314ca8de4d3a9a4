#include "actors/preview.hpp"

#include <spdlog/spdlog.h>

#include "actors/blocking.hpp"
#include "actors/names.hpp"
#include "messages/atoms.hpp"
#include "messages/errors.hpp"
#include "messages/project_state.hpp"
#include "runtime/health_probe.hpp"
#include "runtime/process_driver.hpp"
#include "runtime/source.hpp"
#include "runtime/strays.hpp"

namespace berth {

namespace {

using self_ptr = caf::stateful_actor<preview_state>*;
using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr auto stop_grace = 3s;
constexpr int unhealthy_limit = 3;  // failed probes in a row that restart a live preview

process_driver& driver() {
  static process_driver d;
  return d;
}

process_handle handle_of(const preview_launched& p) { return {p.pid, p.start_time, p.pgid}; }

std::string status_json(self_ptr self) {
  auto& st = self->state;
  json j{{"env", "preview"},
         {"status", st.status},
         {"port", st.port},
         {"url", "http://127.0.0.1:" + std::to_string(st.port)},
         {"folder", st.paths.preview.string()},
         {"restarts", st.restarts.recent()}};
  if (st.status == "running" || st.status == "starting") j["pid"] = st.process.pid;
  if (!st.reason.empty()) j["reason"] = st.reason;
  return j.dump();
}

void append(self_ptr self, const char* type, json data) {
  self->request(names::whereis(self->system(), names::event_store), std::chrono::seconds(30),
                append_atom_v,
                std::vector<new_event>{{project_stream(self->state.project), type, data.dump()}})
      .then([](std::vector<event_record>&) {},
            [=](caf::error& err) {
              spdlog::error("preview {}: cannot record {}: {}", self->state.project, type,
                            to_string(err));
            });
}

void answer_waiting(self_ptr self, const caf::error& err) {
  for (auto& rp : self->state.waiting) {
    if (err)
      rp.deliver(err);
    else
      rp.deliver(status_json(self));
  }
  self->state.waiting.clear();
}

// Waits for the process to end off the scheduler, then tells the preview actor.
void watch(self_ptr self, preview_launched p) {
  auto alive = self->state.alive;
  caf::actor me = caf::actor_cast<caf::actor>(self);
  self->spawn<caf::detached>([=](caf::event_based_actor* w) {
    for (;;) {
      auto info = driver().wait(handle_of(p), 1s);
      if (!alive->load()) break;  // our actor is gone; a new incarnation adopts the process
      if (info.status != process_status::running) {
        w->send(me, process_exited{p.pid, p.start_time, info.exit_code, info.term_signal});
        break;
      }
    }
    w->quit();
  });
}

// Copies the source (unless restarting), starts the command and waits for its health check.
// Runs in a detached worker; replies with the launched process or an error naming the phase.
caf::result<preview_launched> launch_blocking(const manifest& spec, const project_paths& paths,
                                              uint16_t port, bool fresh_source) {
  if (fresh_source) {
    if (auto s = snapshot_source(spec.source_path, spec.source_git, spec.source_ref, paths.preview_src); !s)
      return make_error(errc::invalid_request, "preparing source: " + s.message());
  }
  process_spec ps;
  ps.argv = spec.preview_command;
  ps.cwd = paths.preview_src.string();
  ps.env = spec.env;
  for (auto& [k, v] : read_secrets_file(paths)) ps.env[k] = v;
  ps.env["PORT"] = std::to_string(port);
  ps.env["HOST"] = "127.0.0.1";
  ps.stdout_path = ps.stderr_path = (paths.preview_logs / "preview.log").string();
  process_handle h;
  if (auto s = driver().start(ps, &h); !s)
    return make_error(errc::invalid_request, "starting: " + s.message());
  auto& health = spec.preview_health;
  auto result = wait_healthy("127.0.0.1", port, health.path, std::chrono::seconds(health.timeout_s),
                             std::chrono::milliseconds(health.interval_ms),
                             [&] { return driver().inspect(h).status == process_status::running; });
  if (!result.healthy) {
    auto info = driver().inspect(h);
    driver().stop(h, stop_grace);
    std::string why = info.status == process_status::running
                          ? result.error
                          : describe(process_exited{h.pid, h.start_time, info.exit_code, info.term_signal});
    return make_error(errc::unavailable, "health check failed: " + why);
  }
  return preview_launched{h.pid, static_cast<uint64_t>(h.start_time), h.pgid, port};
}

// SIGTERM, then SIGKILL after the grace: blocking, so in a worker.
void stop_in_background(self_ptr self, preview_launched p) {
  self->spawn<caf::detached>([p](caf::event_based_actor* w) {
    driver().stop(handle_of(p), stop_grace);
    w->quit();
  });
}

void schedule_restart(self_ptr self, const std::string& why);
void arm_pass(self_ptr self);

void launch(self_ptr self, bool fresh_source) {
  auto& st = self->state;
  auto gen = ++st.generation;
  auto spec = st.spec;
  auto paths = st.paths;
  auto port = st.port;
  auto worker = self->spawn<caf::detached>([=](caf::event_based_actor* w) -> caf::behavior {
    return {[=](launch_atom) {
      w->quit();
      return launch_blocking(spec, paths, port, fresh_source);
    }};
  });
  self->request(worker, caf::infinite, launch_atom_v)
      .then(
          [=](preview_launched& p) {
            if (gen != self->state.generation) {  // stopped meanwhile
              stop_in_background(self, p);
              return;
            }
            self->state.status = "running";
            self->state.process = p;
            self->state.reason.clear();
            self->state.failed_probes = 0;
            append(self, ev::preview_started, to_json(p));
            watch(self, p);
            arm_pass(self);
            answer_waiting(self, {});
          },
          [=](caf::error& err) {
            if (gen != self->state.generation) return;
            if (self->state.waiting.empty()) {  // an automatic restart failed: back off again
              schedule_restart(self, view(err).message);
              return;
            }
            self->state.status = "stopped";
            self->state.reason = view(err).message;
            answer_waiting(self, err);
          });
}

void schedule_restart(self_ptr self, const std::string& why) {
  auto& st = self->state;
  auto delay = st.restarts.next(st.policy, std::chrono::steady_clock::now(), jitter_rng());
  if (!delay) {
    st.status = "crashed";
    st.reason = why + fmt::format(" ({} restarts within {} s)", st.restarts.recent(), st.policy.window.count());
    spdlog::warn("preview {}: crashed: {}", st.project, st.reason);
    append(self, ev::preview_crashed, {{"reason", st.reason}});
    return;
  }
  st.status = "restarting";
  st.reason = why;
  spdlog::info("preview {}: {}; restarting in {} ms", st.project, why, delay->count());
  self->delayed_send(self, *delay, retry_atom_v, st.generation);
}

// The reconciler's pass while the preview runs: alive (same process) and answering.
void arm_pass(self_ptr self) {
  auto& st = self->state;
  if (st.pass_armed || st.status != "running") return;
  st.pass_armed = true;
  self->delayed_send(self, st.pass_interval, reconcile_atom_v);
}

void on_pass(self_ptr self) {
  auto& st = self->state;
  st.pass_armed = false;
  if (st.status != "running" || st.probing) return arm_pass(self);
  auto process = st.process;
  if (!driver().is_ours(handle_of(process))) {
    ++st.generation;
    schedule_restart(self, "the preview's process is gone");
    return;
  }
  auto result = std::make_shared<probe_result>();
  auto path = st.spec.preview_health.path;
  auto port = st.port;
  auto timeout = std::chrono::milliseconds(std::max(1000, st.spec.preview_health.interval_ms * 4));
  st.probing = true;
  auto worker = self->spawn<caf::detached>([=](caf::event_based_actor* w) -> caf::behavior {
    return {[=](launch_atom) {
      w->quit();
      *result = probe_once("127.0.0.1", port, path, timeout);
      return true;
    }};
  });
  auto judge = [=] {
    auto& st = self->state;
    st.probing = false;
    if (st.status != "running" || st.process.pid != process.pid) return arm_pass(self);
    st.failed_probes = result->healthy ? 0 : st.failed_probes + 1;
    if (st.failed_probes < unhealthy_limit) return arm_pass(self);
    auto why = fmt::format("the preview failed {} health checks in a row ({})", st.failed_probes, result->error);
    st.failed_probes = 0;
    ++st.generation;
    stop_in_background(self, process);
    schedule_restart(self, why);
  };
  self->request(worker, caf::infinite, launch_atom_v).then([=](bool) { judge(); }, [=](caf::error&) { judge(); });
}

void stop_process(self_ptr self) {
  auto& st = self->state;
  ++st.generation;
  if (st.status == "running") stop_in_background(self, st.process);
  st.status = "stopped";
  st.process = {};
  st.restarts.clear();
}

caf::result<std::string> start(self_ptr self, manifest spec, uint16_t port, bool restart) {
  auto& st = self->state;
  if (spec.preview_command.empty())
    return make_error(errc::conflict, "the manifest has no preview.command");
  if (st.status == "running" && !restart) return status_json(self);
  if (restart && st.status != "stopped" && st.status != "crashed") stop_process(self);
  st.spec = std::move(spec);
  st.port = port;
  auto rp = self->make_response_promise<std::string>();
  st.waiting.push_back(rp);
  if (st.status != "starting") {
    st.status = "starting";
    st.restarts.clear();
    launch(self, true);
  }
  return rp;
}

// Reconciles with the world: adopts our own process (same pid and start time), or brings
// the preview back when the log says it should run.
void adopt(self_ptr self, const preview_record& last) {
  auto& st = self->state;
  if (last.status == "running") {
    if (driver().is_ours(handle_of(last.process))) {
      st.status = "running";
      st.process = last.process;
      watch(self, st.process);
      arm_pass(self);
      spdlog::info("preview {}: adopted running process {}", st.project, st.process.pid);
    } else {
      st.status = "starting";
      launch(self, false);
    }
  } else if (last.status == "crashed") {
    st.status = "crashed";
    st.reason = last.reason;
  }
}

}  // namespace

caf::behavior preview_actor(self_ptr self, std::string project, project_paths paths, manifest spec,
                            uint16_t port, deploy_settings settings) {
  if (auto s = make_dirs({paths.preview_src, paths.preview_logs}); !s)
    throw std::runtime_error(s.message());
  auto& st = self->state;
  st.project = std::move(project);
  st.paths = std::move(paths);
  st.spec = std::move(spec);
  st.port = port;
  st.policy = {std::chrono::milliseconds(settings.restart_base_ms), std::chrono::milliseconds(settings.restart_max_ms),
               static_cast<size_t>(settings.crash_loop_restarts), std::chrono::seconds(settings.crash_loop_window_s)};
  st.pass_interval = std::chrono::milliseconds(settings.reconcile_interval_ms);
  // State = fold(events): the log knows whether a preview should run and which process was ours.
  self->request(names::whereis(self->system(), names::event_store), std::chrono::seconds(30),
                read_stream_atom_v, project_stream(self->state.project), uint64_t{0}, uint64_t{0})
      .await(
          [=](std::vector<event_record>& events) {
            project_state folded;
            for (auto& e : events) fold(folded, e);
            // Strays first (a preview of an earlier incarnation that was being replaced):
            // quick, at most one group, so done here before anything else runs.
            std::vector<process_handle> keep;
            if (folded.preview.status == "running") keep.push_back(handle_of(folded.preview.process));
            for (auto& p : stop_strays(self->state.paths.preview, keep, std::chrono::milliseconds(500)))
              spdlog::info("preview {}: stopped stray process group {}", self->state.project, p.pgid);
            adopt(self, folded.preview);
          },
          [=](caf::error& err) { self->quit(err); });
  return {
      [=](start_atom, manifest& m, uint16_t p) { return start(self, std::move(m), p, false); },
      [=](restart_atom, manifest& m, uint16_t p) { return start(self, std::move(m), p, true); },
      [=](stop_atom) {
        bool was_up = self->state.status != "stopped";
        stop_process(self);
        answer_waiting(self, make_error(errc::conflict, "the preview was stopped"));
        if (was_up) append(self, ev::preview_stopped, json::object());
        return status_json(self);
      },
      [=](status_atom) { return status_json(self); },
      [=](process_exited& x) {
        auto& st = self->state;
        if (st.status != "running" || x.pid != st.process.pid || x.start_time != st.process.start_time)
          return;  // a process we stopped on purpose
        schedule_restart(self, "preview process " + describe(x));
      },
      [=](reconcile_atom) { on_pass(self); },
      [=](shutdown_atom, bool stop_apps) -> caf::result<bool> {
        // berth is stopping: no more restarts; the process is stopped only if asked, and
        // without an event, so the next start brings the preview back.
        auto& st = self->state;
        ++st.generation;
        if (!stop_apps || st.status != "running") return true;
        st.status = "stopped";  // its exit is expected now: no restart
        auto rp = self->make_response_promise<bool>();
        auto p = st.process;
        run_blocking(self, [p] { driver().stop(handle_of(p), stop_grace); },
                     [rp](const std::string&) mutable { rp.deliver(true); });
        return rp;
      },
      [=](retry_atom, uint64_t gen) {
        if (gen != self->state.generation || self->state.status != "restarting") return;
        self->state.status = "starting";
        launch(self, false);
      },
      [=](crash_atom) -> std::string { throw std::runtime_error("crash requested"); },
  };
}

}  // namespace berth
