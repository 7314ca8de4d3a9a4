#include "runtime/deploy_steps.hpp"

#include <fstream>
#include <thread>

#include <fmt/format.h>

#include "messages/event.hpp"
#include "runtime/breaker.hpp"
#include "runtime/fs_util.hpp"
#include "runtime/health_probe.hpp"
#include "runtime/ports.hpp"
#include "runtime/release.hpp"
#include "runtime/source.hpp"

namespace berth {

namespace fs = std::filesystem;
using json = nlohmann::json;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

constexpr auto switch_probe_interval = 10ms;
constexpr auto port_free_wait = 3s;  // after stopping the old release, for the kernel to let go

process_driver& driver() {
  static process_driver d;
  return d;
}

int64_t ms_since(clock_type::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - t0).count();
}

void fail(deploy_outcome& out, deploy_log& log, std::string code, std::string message) {
  out.error_code = std::move(code);
  out.message = std::move(message);
  log.line("error: " + out.message);
}

std::chrono::milliseconds health_timeout(const manifest& spec) {
  return std::chrono::seconds(spec.production_health.timeout_s);
}

std::string exit_reason(const process_info& info) {
  if (info.term_signal != 0) return "was killed by signal " + std::to_string(info.term_signal);
  if (info.exit_code >= 0) return "exited with code " + std::to_string(info.exit_code);
  return "exited";
}

bool alive(const process_handle& h) { return driver().inspect(h).status == process_status::running; }

void stop_process(const deploy_plan& plan, release_process& p, deploy_log& log, const char* what) {
  if (!p.running()) return;
  log.line(fmt::format("stopping {} {} (pid {}, port {})", what, p.hash, p.handle.pid, p.port));
  driver().stop(p.handle, plan.stop_grace);
  p.handle = {};
}

// Starts a release's process through the "process" backend's breaker and the retry policy
// (runtime/breaker.hpp): transient failures (fork, EAGAIN, a log file that cannot be opened)
// are retried with backoff and logged; a permanent one (a missing program) fails at once; an
// open breaker refuses at once. Only the start itself: whether the app then gets healthy is
// the app's business, not the backend's (see check_candidate).
status start_process(const deploy_plan& plan, const process_spec& ps, process_handle* h, deploy_log* log,
                     bool essential, int* attempts) {
  call_options o;
  o.cancelled = plan.cancelled;
  o.essential = essential;
  o.on_retry = [log](int attempt, const status& failure, std::chrono::milliseconds delay) {
    if (log)
      log->line(fmt::format("start attempt {} failed (transient): {}; retrying in {} ms", attempt,
                            failure.message(), delay.count()));
  };
  auto s = call_backend("process", [&] { return driver().start(ps, h); }, o, attempts);
  if (log && !s && !is_backend_unavailable(s) && classify(s) == failure_kind::permanent)
    log->line("start failed with a permanent error: not retried");
  return s;
}

// "backend_unavailable" when an open breaker refused the call, else `otherwise`.
std::string code_for(const status& s, const char* otherwise) {
  return is_backend_unavailable(s) ? "backend_unavailable" : otherwise;
}

std::string attempts_note(int attempts) {
  return attempts > 1 ? fmt::format(" (after {} attempts)", attempts) : std::string();
}

// The same failure with `suffix` added to its message.
status with_suffix(const status& s, const std::string& suffix) {
  if (s.is_ok() || suffix.empty()) return s;
  switch (s.which()) {
    case status::code::not_found: return status::not_found(s.message() + suffix);
    case status::code::corruption: return status::corruption(s.message() + suffix);
    case status::code::invalid_argument: return status::invalid_argument(s.message() + suffix);
    default: return status::io_error(s.message() + suffix);
  }
}

bool wait_port_free(uint16_t port) {
  auto until = clock_type::now() + port_free_wait;
  while (!port_is_free(port)) {
    if (clock_type::now() > until) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

}  // namespace

void deploy_log::line(const std::string& text) {
  std::lock_guard<std::mutex> lock(mu_);
  std::ofstream out(file_, std::ios::app);
  auto now = std::chrono::duration_cast<std::chrono::microseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  out << iso8601(now) << " berth: " << text << '\n';
}

json deploy_outcome::resources(const deploy_plan& plan) const {
  json j = json::object();
  if (!hash.empty()) j["hash"] = hash;
  if (!plan.current.empty()) j["previous"] = plan.current;
  // Once stopped, the candidate is reported as gone (null) rather than by a dead pid.
  if (candidate.port != 0)
    j["candidate"] = candidate.running() ? json{{"pid", candidate.handle.pid}, {"port", candidate.port}} : json(nullptr);
  if (promoted.running()) {
    j["pid"] = promoted.handle.pid;
    j["port"] = promoted.port;
  }
  if (build_ms >= 0) j["build_ms"] = build_ms;
  if (candidate_boot_ms >= 0) j["candidate_boot_ms"] = candidate_boot_ms;
  if (promote_boot_ms >= 0) j["promote_boot_ms"] = promote_boot_ms;
  if (gap_ms >= 0) j["gap_ms"] = gap_ms;
  return j;
}

std::map<std::string, std::string> production_env(const manifest& spec, const project_paths& paths,
                                                  const std::string& project) {
  auto env = spec.env;
  for (auto& [k, v] : read_secrets_file(paths)) env[k] = v;
  env["BERTH_PROJECT"] = project;
  env["BERTH_ENV"] = "production";
  return env;
}

status start_release(const deploy_plan& plan, const std::string& hash, uint16_t port,
                     std::chrono::milliseconds interval, release_process* out, deploy_log* log,
                     bool essential) {
  auto folder = plan.paths.production / hash;
  if (!fs::is_directory(folder)) return status::not_found("release " + hash + " is not on disk");
  process_spec ps;
  ps.argv = plan.spec.production_command;
  ps.cwd = folder.string();
  ps.env = plan.env;
  ps.env["PORT"] = std::to_string(port);
  ps.env["HOST"] = "127.0.0.1";
  ps.env["BERTH_RELEASE"] = hash;
  ps.stdout_path = ps.stderr_path = plan.paths.production_log().string();
  process_handle h;
  int attempts = 0;
  if (auto s = start_process(plan, ps, &h, log, essential, &attempts); !s)
    return with_suffix(s, attempts_note(attempts));
  auto& health = plan.spec.production_health;
  auto probe = wait_healthy("127.0.0.1", port, health.path, health_timeout(plan.spec), interval,
                            [&] { return alive(h) && !(plan.cancelled && plan.cancelled()); });
  if (!probe.healthy) {
    auto info = driver().inspect(h);
    driver().stop(h, plan.stop_grace);
    if (info.status != process_status::running)
      return status::io_error("the release " + exit_reason(info) + " before answering its health check");
    return status::io_error("health check on port " + std::to_string(port) + " failed: " + probe.error);
  }
  *out = {hash, h, port};
  return status::ok();
}

void prepare_source(const deploy_plan& plan, deploy_outcome& out, deploy_log& log) {
  out.workspace = plan.paths.build_workspace(plan.id);
  if (auto s = make_dirs({plan.paths.builds}); !s) return fail(out, log, "source_failed", s.message());
  auto& m = plan.spec;
  log.line("snapshotting " + (m.source_git.empty() ? m.source_path : mask_url_credentials(m.source_git) + " @ " + m.source_ref));
  if (auto s = snapshot_source(m.source_path, m.source_git, m.source_ref, out.workspace); !s)
    return fail(out, log, "source_failed", "cannot snapshot the source: " + s.message());
}

void run_build(const deploy_plan& plan, deploy_outcome& out, deploy_log& log) {
  auto& m = plan.spec;
  if (m.build_command.empty()) {
    log.line("no build.command: the artifacts are taken from the source as they are");
    out.build_ms = 0;
    return;
  }
  process_spec ps;
  ps.argv = m.build_command;
  ps.cwd = out.workspace.string();
  ps.env = plan.env;
  ps.env["BERTH_ENV"] = "build";
  ps.stdout_path = ps.stderr_path = log.file().string();
  log.line("running the build: " + fmt::format("{}", fmt::join(m.build_command, " ")));
  auto t0 = clock_type::now();
  int code = -1;
  bool timed_out = false;
  auto s = driver().run(ps, plan.build_timeout, &code, &timed_out, std::chrono::milliseconds(1000), plan.cancelled);
  out.build_ms = ms_since(t0);
  if (timed_out)
    return fail(out, log, "build_timeout",
                fmt::format("the build did not finish within {} s", plan.build_timeout.count()));
  if (!s && plan.cancelled && plan.cancelled()) return log.line("the build was stopped: " + s.message());
  if (!s) return fail(out, log, "build_failed", "the build could not run: " + s.message());
  if (code != 0)
    return fail(out, log, "build_failed", fmt::format("the build exited with code {}", code));
  log.line(fmt::format("build finished in {} ms", out.build_ms));
}

void package_artifacts(const deploy_plan& plan, deploy_outcome& out, deploy_log& log) {
  auto artifacts = plan.spec.artifacts.empty() ? std::vector<std::string>{"."} : plan.spec.artifacts;
  if (auto s = hash_artifacts(out.workspace, artifacts, &out.hash); !s)
    return fail(out, log, "package_failed", "cannot package the artifacts: " + s.message());
  log.line("release hash " + out.hash);
  if (out.hash == plan.current && !plan.force) {
    out.unchanged = true;
    log.line("same as the current release: nothing to do (deploy with force to redo it)");
    return;
  }
  bool existed = fs::is_directory(plan.paths.production / out.hash);
  if (auto s = package_release(out.workspace, artifacts, plan.paths.production, out.hash, nullptr); !s)
    return fail(out, log, "package_failed", "cannot package the artifacts: " + s.message());
  out.packaged_new = !existed;
  log.line(existed ? "release " + out.hash + " is already on disk" : "packaged release " + out.hash);
}

void start_candidate(const deploy_plan& plan, deploy_outcome& out, deploy_log& log) {
  auto folder = plan.paths.production / out.hash;
  if (!fs::is_directory(folder)) return fail(out, log, "start_failed", "release " + out.hash + " is not on disk");
  process_spec ps;
  ps.argv = plan.spec.production_command;
  ps.cwd = folder.string();
  ps.env = plan.env;
  ps.env["PORT"] = std::to_string(plan.candidate_port);
  ps.env["HOST"] = "127.0.0.1";
  ps.env["BERTH_RELEASE"] = out.hash;
  ps.stdout_path = ps.stderr_path = plan.paths.production_log().string();
  process_handle h;
  out.candidate_started = clock_type::now();
  int attempts = 0;
  if (auto s = start_process(plan, ps, &h, &log, false, &attempts); !s) {
    if (plan.cancelled && plan.cancelled() && !is_backend_unavailable(s)) return;  // the actor reports the cancel
    return fail(out, log, code_for(s, "start_failed"), "cannot start the release: " + s.message() + attempts_note(attempts));
  }
  out.candidate = {out.hash, h, plan.candidate_port};
  log.line(fmt::format("candidate {} started as pid {} on port {}{}", out.hash, h.pid, plan.candidate_port,
                       attempts_note(attempts)));
}

void check_candidate(const deploy_plan& plan, deploy_outcome& out, deploy_log& log) {
  auto& health = plan.spec.production_health;
  auto h = out.candidate.handle;
  auto wanted = [&] { return alive(h) && !(plan.cancelled && plan.cancelled()); };
  auto t0 = clock_type::now();
  log.line(fmt::format("probing http://127.0.0.1:{}{} every {} ms for up to {} s", out.candidate.port,
                       health.path, health.interval_ms, health.timeout_s));
  auto probe = wait_healthy("127.0.0.1", out.candidate.port, health.path, health_timeout(plan.spec),
                            std::chrono::milliseconds(health.interval_ms), wanted);
  if (probe.healthy && health.min_healthy_s > 0) {
    out.candidate_boot_ms = ms_since(out.candidate_started);
    log.line(fmt::format("healthy; must stay healthy for {} s", health.min_healthy_s));
    probe = stay_healthy("127.0.0.1", out.candidate.port, health.path,
                         std::chrono::seconds(health.min_healthy_s),
                         std::chrono::milliseconds(health.interval_ms), wanted);
  }
  if (plan.cancelled && plan.cancelled() && !probe.healthy) return;  // the actor reports the cancel
  if (!probe.healthy) {
    auto info = driver().inspect(h);
    if (info.status != process_status::running)
      return fail(out, log, "health_check_failed",
                  "the candidate " + exit_reason(info) + " before passing its health check");
    return fail(out, log, "health_check_failed",
                "health check of " + health.path + " failed: " + probe.error);
  }
  if (out.candidate_boot_ms < 0) out.candidate_boot_ms = ms_since(out.candidate_started);
  log.line(fmt::format("candidate healthy after {} ms", ms_since(t0)));
}

void switch_traffic(const deploy_plan& plan, deploy_outcome& out, deploy_log& log) {
  auto serving = plan.serving;
  // The new release must be started after the old one stops: with the process backend's
  // breaker open that start would be refused, so leave the serving release alone.
  if (auto b = breakers().get("process").snapshot(); b.state == breaker_state::open)
    return fail(out, log, "backend_unavailable",
                "the process backend's circuit breaker is open (last error: " + b.last_error +
                    "); the serving release was left alone");
  auto t0 = clock_type::now();
  if (serving.running()) {
    stop_process(plan, serving, log, "the serving release");
    out.old_stopped = true;
  }
  if (!wait_port_free(plan.stable_port))
    return fail(out, log, "switch_failed",
                fmt::format("port {} is held by a process berth does not manage", plan.stable_port));
  auto boot0 = clock_type::now();
  if (auto s = start_release(plan, out.hash, plan.stable_port, switch_probe_interval, &out.promoted, &log); !s) {
    fail(out, log, code_for(s, "switch_failed"), "the new release did not come up on the stable port: " + s.message());
    return;  // compensate() brings the old release back
  }
  out.promote_boot_ms = ms_since(boot0);
  out.gap_ms = out.old_stopped ? ms_since(t0) : 0;
  if (auto s = switch_current(plan.paths.production, out.hash); !s)
    return fail(out, log, "switch_failed", "cannot switch production/current: " + s.message());
  out.switched = true;
  log.line(fmt::format("release {} serves port {} (pid {}); gap {} ms", out.hash, plan.stable_port,
                       out.promoted.handle.pid, out.gap_ms));
}

void drain(const deploy_plan& plan, deploy_outcome& out, deploy_log& log) {
  // In direct mode the old release left the stable port at the switch; what is left is the
  // candidate on the spare port, which took no traffic.
  stop_process(plan, out.candidate, log, "the candidate");
  std::error_code ec;
  if (!out.workspace.empty()) fs::remove_all(out.workspace, ec);
}

void switch_through_proxy(const deploy_plan& plan, deploy_outcome& out, deploy_log& log) {
  auto t0 = clock_type::now();
  auto serving = plan.serving;
  if (serving.running() && serving.port == plan.stable_port) {
    stop_process(plan, serving, log, "the release serving the stable port directly");
    out.old_stopped = true;
    if (!wait_port_free(plan.stable_port))
      return fail(out, log, "switch_failed",
                  fmt::format("port {} is held by a process berth does not manage", plan.stable_port));
  }
  if (!plan.set_route) return fail(out, log, "switch_failed", "no proxy to switch through");
  out.route_requested = true;
  if (auto s = plan.set_route(out.candidate.port); !s)
    return fail(out, log, code_for(s, "switch_failed"), "the proxy did not switch: " + s.message());
  out.promoted = out.candidate;  // it keeps its port: now it is the release
  out.candidate = {};
  out.gap_ms = out.old_stopped ? ms_since(t0) : 0;
  if (auto s = switch_current(plan.paths.production, out.hash); !s)
    return fail(out, log, "switch_failed", "cannot switch production/current: " + s.message());
  out.switched = true;
  log.line(fmt::format("the proxy sends port {} and the host to release {} on port {} (pid {})",
                       plan.stable_port, out.hash, out.promoted.port, out.promoted.handle.pid));
}

void drain_after_proxy_switch(const deploy_plan& plan, deploy_outcome& out, deploy_log& log) {
  auto serving = plan.serving;
  if (serving.running() && !out.old_stopped) {
    log.line(fmt::format("the old release {} drains for {} ms", serving.hash, plan.drain.count()));
    std::this_thread::sleep_for(plan.drain);
    stop_process(plan, serving, log, "the old release");
  }
  std::error_code ec;
  if (!out.workspace.empty()) fs::remove_all(out.workspace, ec);
}

void compensate(const deploy_plan& plan, deploy_outcome& out, deploy_log& log) {
  // Proxy mode: the proxy records a route before Caddy takes it, so a switch that failed (Caddy
  // unreachable, its breaker open) may have left the route pointing at the candidate, which
  // stops below; the next config load would send the site there. Point it back at the release
  // that still serves (the proxy actor records it even when Caddy cannot take it now).
  if (!out.switched && out.route_requested && plan.set_route && plan.serving.running() && !out.old_stopped &&
      plan.serving.port != plan.stable_port) {
    log.line(fmt::format("pointing the proxy back at release {} on port {}", plan.serving.hash, plan.serving.port));
    if (auto s = plan.set_route(plan.serving.port); !s)
      log.line("error: the proxy did not take the route back: " + s.message());
    out.route_requested = false;
  }
  if (!out.switched) {
    stop_process(plan, out.promoted, log, "the new release");
    if (out.old_stopped && !plan.current.empty()) {
      log.line("starting the previous release " + plan.current + " again on port " +
               std::to_string(plan.stable_port));
      wait_port_free(plan.stable_port);
      release_process back;
      // essential: an open "process" breaker does not keep the previous release down.
      if (auto s = start_release(plan, plan.current, plan.stable_port, switch_probe_interval, &back, &log,
                                 /*essential=*/true);
          !s)
        log.line("error: the previous release did not come back: " + s.message());
      else
        out.promoted = back;  // the actor records it as serving again
      out.old_stopped = false;
    }
  }
  stop_process(plan, out.candidate, log, "the candidate");
  if (out.packaged_new && !out.switched && out.hash != plan.current) {
    if (auto s = remove_release(plan.paths.production, out.hash); !s)
      log.line("error: cannot remove release " + out.hash + ": " + s.message());
    else
      log.line("removed the incomplete release " + out.hash);
    out.packaged_new = false;
  }
  std::error_code ec;
  if (!out.workspace.empty()) fs::remove_all(out.workspace, ec);
}

std::vector<std::string> prune_releases(const project_paths& paths, const std::vector<std::string>& hashes) {
  std::vector<std::string> removed;
  for (auto& h : hashes)
    if (remove_release(paths.production, h)) removed.push_back(h);
  return removed;
}

}  // namespace berth
