#include "runtime/pipeline/launch.hpp"

#include <filesystem>
#include <thread>

#include <fmt/format.h>

#include "runtime/net/health_probe.hpp"
#include "runtime/resilience/backends.hpp"

namespace berth {

namespace {

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

}  // namespace

const char* backend_of(const std::string& runtime) { return runtime == "process" || runtime.empty() ? "process" : "docker"; }

container_options container_options_of(const manifest& m, const std::map<std::string, std::string>& env) {
  container_options c;
  c.base = m.image_base;
  c.app_port = static_cast<uint16_t>(m.image_port);
  c.healthcheck = m.image_healthcheck;
  c.volumes = m.volumes;
  c.replicas = m.replicas;
  c.registry = m.image_registry;
  if (auto it = env.find(m.image_registry_secret); !m.image_registry_secret.empty() && it != env.end())
    c.registry_auth = it->second;
  return c;
}

std::string how_it_ended(const instance_status& end) {
  if (end.oom) return "ran out of memory (over its memory limit) and was killed";
  if (end.signal > 0) return "was killed by signal " + std::to_string(end.signal);
  if (end.exit_code >= 0) return "exited with code " + std::to_string(end.exit_code);
  return "exited";
}

instance_status after_failed_probe(const runtime_driver& driver, const instance_ref& r,
                                   std::chrono::milliseconds settle) {
  auto until = std::chrono::steady_clock::now() + settle;
  auto now = driver.inspect(r);
  while (now.running() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    now = driver.inspect(r);
  }
  return now;
}

instance_spec release_spec(const release_launch& l) {
  instance_spec s;
  s.labels = {l.project, "production", l.hash, l.spec->runtime};
  s.from = artifact{(l.paths->production / l.hash).string()};
  s.command = l.spec->production_command;
  s.env = *l.env;
  s.env["PORT"] = std::to_string(l.port);
  s.env["HOST"] = "127.0.0.1";
  s.env["BERTH_RELEASE"] = l.hash;
  s.port = l.port;
  s.log = l.paths->release_log(l.hash);
  s.limits = effective_limits(l.spec->production_limits, "production");  // unapplied without cgroups
  s.sandbox = {true, l.sandbox, l.paths->production / l.hash, {}, l.paths->app_data("production")};
  s.container = container_options_of(*l.spec, *l.env);
  return s;
}

status start_release(runtime_driver& driver, backend_guards& b, const release_launch& l, instance_ref* out,
                     int* attempts) {
  if (!std::filesystem::is_directory(l.paths->production / l.hash))
    return status::not_found("release " + l.hash + " is not on disk");
  call_options o;
  o.cancelled = l.give_up;
  o.essential = l.essential;
  o.on_retry = [&l](int attempt, const status& failure, std::chrono::milliseconds delay) {
    if (l.log)
      l.log(fmt::format("start attempt {} failed (transient): {}; retrying in {} ms", attempt, failure.message(),
                        delay.count()));
  };
  int made = 0;
  auto spec = release_spec(l);
  auto s = b.call(backend_of(l.spec->runtime), [&] { return driver.start(spec, out); }, o, &made);
  if (attempts) *attempts = made;
  if (!s && l.log && !is_backend_unavailable(s) && classify(s) == failure_kind::permanent)
    l.log("start failed with a permanent error: not retried");
  return with_suffix(s, attempts_note(made));
}

status launch_release(runtime_driver& driver, backend_guards& b, const release_launch& l, instance_ref* out) {
  instance_ref r;
  if (auto s = start_release(driver, b, l, &r); !s) return s;
  auto& health = l.spec->production_health;
  auto probe = wait_healthy("127.0.0.1", l.port, health.path, std::chrono::seconds(health.timeout_s), l.probe_every,
                            [&] { return driver.inspect(r).running() && !(l.give_up && l.give_up()); });
  if (!probe.healthy) {
    auto end = after_failed_probe(driver, r);
    driver.stop(r, l.stop_grace);
    if (!end.running()) return status::io_error("the release " + how_it_ended(end) + " before answering its health check");
    return status::io_error("health check on port " + std::to_string(l.port) + " failed: " + probe.error);
  }
  *out = r;
  return status::ok();
}

}  // namespace berth
