#include "actors/preview.hpp"

#include <spdlog/spdlog.h>

#include "actors/append.hpp"
#include "actors/blocking.hpp"
#include "actors/names.hpp"
#include "messages/atoms.hpp"
#include "messages/errors.hpp"
#include "messages/project_state.hpp"
#include "runtime/logs/logging.hpp"
#include "runtime/net/health_probe.hpp"
#include "runtime/pipeline/launch.hpp"
#include "runtime/release/source.hpp"
#include "runtime/runtimes.hpp"

namespace berth {

namespace {

using self_ptr = caf::stateful_actor<preview_state>*;
using json = nlohmann::json;
constexpr auto store_timeout = std::chrono::seconds(30);

std::chrono::milliseconds grace_of(self_ptr self) {
  return std::chrono::milliseconds(self->state.env.settings.stop_grace_ms);
}


int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

preview_view view_of(self_ptr self) {
  auto& st = self->state;
  auto v = preview_view_of(st.rec, st.status, st.reason, st.port,
                           site_url(st.env.settings.site, st.env.project, site_env::preview), st.env.paths.preview.string(),
                           exits_within(keeper_policy_of(st.env.settings).restart, now_us(), st.rec.exits_us));
  if (st.status == "running") v.usage = usage_view_of(*st.env.driver, st.rec.process);
  return v;
}

void record(self_ptr self, const char* type, json data, std::function<void()> then = {}) {
  append_events(self, {{project_stream(self->state.env.project), type, dump_json(data)}}, true,
                "preview " + self->state.env.project, [self, then](std::vector<event_record>& stored) {
                  for (auto& e : stored) fold(self->state.rec, e);
                  if (then) then();
                });
}

void answer_waiting(self_ptr self, const caf::error& err) {
  for (auto& rp : self->state.waiting) {
    if (err)
      rp.deliver(err);
    else
      rp.deliver(view_of(self));
  }
  self->state.waiting.clear();
}

// The blocking start of the preview: a fresh copy of the source (unless restarting, or the
// source is the workspace itself, which it runs in as it is), the
// command on the preview port, and its health check. Made in the actor, run on a worker.
// invalid_argument: it cannot run as asked (source, command); io_error: it did not get healthy.
std::function<status(instance_ref*)> preview_start(self_ptr self, bool fresh_source) {
  auto& st = self->state;
  return [env = st.env, spec = st.spec, port = st.port, fresh_source](instance_ref* out) -> status {
    auto secrets = read_secrets_file(env.paths);
    auto credential = secrets.find(spec.source_credentials_secret);
    if (spec.source_workspace) {  // the tree is the source: run in it as it is
      if (auto s = make_dirs({env.paths.preview_src}); !s) return status::io_error("the workspace: " + s.message());
    } else if (fresh_source) {
      if (auto s = snapshot_source(spec.source_path, spec.source_git, spec.source_ref, env.paths.preview_src,
                                   default_git_timeout, credential == secrets.end() ? "" : credential->second);
          !s)
        return status::invalid_argument("preparing source: " + s.message());
    }
    instance_spec is;
    is.labels = {env.project, "preview", "", spec.runtime};
    is.workdir = env.paths.preview_src;
    is.command = spec.preview_command;
    is.env = spec.env;
    for (auto& [k, v] : secrets) is.env[k] = v;  // the preview is the app: it gets every secret
    is.env["PORT"] = std::to_string(port);
    is.env["HOST"] = "127.0.0.1";
    is.port = port;
    is.log = env.paths.preview_log();
    is.limits = effective_limits(spec.preview_limits, "preview");  // unapplied without cgroups
    is.sandbox = {true, env.sandbox, {}, {env.paths.preview_src}, env.paths.app_data("preview")};
    is.container = container_options_of(spec, is.env);
    instance_ref r;
    if (auto s = env.driver->start(is, &r); !s) return status::invalid_argument("starting: " + s.message());
    auto& health = spec.preview_health;
    auto result = wait_healthy("127.0.0.1", port, health.path, std::chrono::seconds(health.timeout_s),
                               std::chrono::milliseconds(health.interval_ms),
                               [&] { return env.driver->inspect(r).running(); });
    if (!result.healthy) {
      auto end = after_failed_probe(*env.driver, r);
      env.driver->stop(r, std::chrono::milliseconds(env.settings.stop_grace_ms));
      return status::io_error("health check failed: " +
                              (end.running() ? result.error : "preview process " + end.describe()));
    }
    *out = r;
    return status::ok();
  };
}

// A start (or a restart) brought the preview up: recorded, then it is kept.
void started(self_ptr self, const instance_ref& r, const char* why, std::function<void()> then) {
  auto data = to_json(r);
  data["cause"] = why;
  record(self, ev::preview_started, data, [self, then] {
    self->state.status = "running";
    self->state.reason.clear();
    if (then) then();
  });
}

void launch(self_ptr self) {
  self->state.service.start_now(preview_start(self, true), [self](const status& failure) {
    auto& st = self->state;
    if (failure) return answer_waiting(self, {});
    if (st.status != "starting") return;  // stopped meanwhile
    st.status = "stopped";
    st.reason = failure.message();
    answer_waiting(self, make_error(failure.which() == status::code::invalid_argument ? errc::invalid_request
                                                                                     : errc::unavailable,
                                    failure.message()));
  });
}

void init_keeper(self_ptr self) {
  keeper::hooks h;
  h.what = "preview " + self->state.env.project + ": the preview";
  h.log_fields = env_fields(self->state.env.project, "preview");
  h.start = [self] { return preview_start(self, false); };
  h.probe = [self](const instance_ref& r) { return http_probe(self->state.spec.preview_health, r.port); };
  h.died = [self](const std::string& why, std::function<void()> then) {
    self->state.status = "restarting";
    self->state.reason = why;
    record(self, ev::preview_exited, {{"reason", why}}, then);
  };
  h.started = [self](const instance_ref& r, const char* why, std::function<void()> then) { started(self, r, why, then); };
  h.crash_loop = [self](const std::string& why) {
    self->state.status = "crashed";
    self->state.reason = why;
    record(self, ev::preview_crashed, {{"reason", why}});
  };
  h.exits = [self] { return self->state.rec.exits_us; };
  self->state.service.init(self, self->state.env.driver, keeper_policy_of(self->state.env.settings), std::move(h));
  self->state.service.measure(self->state.env.metrics, "preview");
}

caf::result<preview_view> start(self_ptr self, manifest spec, uint16_t port, bool restart) {
  auto& st = self->state;
  if (spec.preview_command.empty()) return make_error(errc::conflict, "the manifest has no preview.command");
  if (st.status == "running" && !restart) return view_of(self);
  auto rp = self->make_response_promise<preview_view>();
  st.waiting.push_back(rp);
  if (st.status == "starting") return rp;
  st.spec = std::move(spec);
  st.port = port;
  st.status = "starting";
  if (restart) return st.service.stop(grace_of(self), [self] { launch(self); }), rp;
  launch(self);
  return rp;
}

// Stops the preview (recorded when it was up), then `then`.
void stop_then(self_ptr self, std::function<void()> then) {
  auto& st = self->state;
  bool was_up = st.status != "stopped";
  st.status = "stopped";
  st.reason.clear();
  answer_waiting(self, make_error(errc::conflict, "the preview was stopped"));
  st.service.stop(grace_of(self), [self, was_up, then] {
    if (!was_up) return then();
    record(self, ev::preview_stopped, json::object(), then);
  });
}

// Reconciles with the world: processes of the preview that are not its own stop; its own is
// adopted (same identity) or, when the log says it should run, brought back.
void adopt(self_ptr self) {
  auto& st = self->state;
  auto last = st.rec;
  // What the log says, until the world has been looked at.
  st.status = last.status == "exited" ? "restarting" : last.status;
  st.reason = last.reason;
  auto driver = st.env.driver;
  auto runtimes = runtimes_to_sweep(st.spec.runtime, last.process);
  auto project = st.env.project;
  auto paths = st.env.paths;
  auto grace = grace_of(self);
  auto alive = std::make_shared<bool>(false);
  run_blocking(
      self,
      [=] {
        if (auto s = make_dirs({paths.preview_src, paths.preview_logs}); !s) throw std::runtime_error(s.message());
        for (auto& runtime : runtimes)
          for (auto& r : driver->list({project, "preview", "", runtime})) {
            if (last.status == "running" && r == last.process) continue;
            driver->stop(r, grace);
            log_kv(spdlog::level::info, "preview stopped a stray process",
                   env_fields(project, "preview", {{"pid", r.pid}}));
          }
        *alive = last.status == "running" && driver->inspect(last.process).running();
      },
      [=](const std::string&) {
        auto& st = self->state;
        if (*alive) {
          st.status = "running";
          st.service.keep(last.process);
          log_kv(spdlog::level::info, "preview adopted its running process",
                 env_fields(project, "preview", {{"pid", last.process.pid}}));
        } else if (last.status == "running") {
          st.service.restart_later("the preview was gone when berth started");
          st.status = "restarting";
        } else if (last.status == "exited") {
          st.status = "restarting";
          st.service.restart_later(last.reason);
        } else if (last.status == "crashed") {
          st.status = "crashed";
          st.reason = last.reason;
        }
      },
      while_blocked::hold);  // nothing (a start, a delete) before the world was looked at
}

}  // namespace

caf::behavior preview_actor(self_ptr self, environment env, manifest spec, uint16_t port) {
  auto& st = self->state;
  st.env = std::move(env);
  st.spec = std::move(spec);
  st.port = port;
  init_keeper(self);
  // State = fold(events): the log knows whether the preview should run and which instance was its own.
  self->request(names::whereis(self->system(), names::event_store), store_timeout, read_stream_atom_v,
                project_stream(st.env.project), uint64_t{0}, uint64_t{0})
      .await(
          [=](std::vector<event_record>& events) {
            for (auto& e : events) {
              if (starts_over(e)) self->state.rec = {};
              fold(self->state.rec, e);
            }
            // Behind the proxy the preview has its host; the proxy ignores a route it already has.
            if (self->state.env.settings.proxy)
              if (auto proxy = names::whereis(self->system(), names::proxy)) {
                auto& s = self->state;
                caf::anon_send(proxy, route_atom_v,
                               proxy_route{s.env.project + "-preview", s.env.project,
                                           site_host(s.env.settings.site, s.env.project, site_env::preview), 0, s.port});
              }
            adopt(self);
          },
          [=](caf::error& err) { self->quit(err); });
  return self->state.service.handlers().or_else(
      [=](start_atom, manifest& m, uint16_t p) { return start(self, std::move(m), p, false); },
      [=](restart_atom, manifest& m, uint16_t p) { return start(self, std::move(m), p, true); },
      [=](stop_atom) {
        auto rp = self->make_response_promise<preview_view>();
        stop_then(self, [self, rp]() mutable { rp.deliver(view_of(self)); });
        return rp;
      },
      [=](status_atom) { return view_of(self); },
      [=](update_atom, manifest& m) { self->state.spec = std::move(m); },
      [=](delete_atom) {
        auto rp = self->make_response_promise<bool>();
        stop_then(self, [self, rp]() mutable {
          auto proxy = names::whereis(self->system(), names::proxy);
          if (!proxy) { rp.deliver(true); return; }
          self->request(proxy, std::chrono::seconds(60), unroute_atom_v, self->state.env.project + "-preview")
              .then([rp](bool) mutable { rp.deliver(true); }, [rp](caf::error&) mutable { rp.deliver(true); });
        });
        return rp;
      },
      [=](shutdown_atom, bool stop_apps, uint32_t) -> caf::result<bool> {
        // berth is stopping: no more restarts; the process is stopped only if asked, and
        // without an event, so the next start brings the preview back.
        auto& st = self->state;
        st.service.hold(true);
        if (!stop_apps || st.status != "running") return true;
        auto rp = self->make_response_promise<bool>();
        st.service.stop(grace_of(self), [rp]() mutable { rp.deliver(true); });
        return rp;
      },
      [=](crash_atom) -> std::string { throw std::runtime_error("crash requested"); });
}

}  // namespace berth
