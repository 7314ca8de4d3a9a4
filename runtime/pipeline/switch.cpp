// switching and draining, in the two ways traffic can move to a new release:
// - direct (no proxy): the old release keeps the stable port until the candidate is healthy;
//   then it is stopped and the new release is started on the stable port and probed every
//   10 ms. The gap is the time from that stop to the first healthy answer. If the new release
//   does not come up there, the old one is started again.
// - proxy: the candidate keeps its spare port and becomes the release; the proxy's upstream
//   flips to it (no gap); the old release drains, then stops.
#include <thread>

#include <fmt/format.h>

#include "runtime/net/ports.hpp"
#include "runtime/pipeline/job.hpp"
#include "runtime/resilience/backends.hpp"

namespace berth::pipeline {

namespace {

using namespace std::chrono_literals;

constexpr auto switch_probe_interval = 10ms;
constexpr auto port_free_wait = 3s;  // after stopping the old release, for the kernel to let go

bool wait_port_free(uint16_t port) {
  auto until = clock_type::now() + port_free_wait;
  while (!port_is_free(port)) {
    if (clock_type::now() > until) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// Undo of a switch that stopped the old release: it starts again on the stable port (whatever
// the process backend's breaker says), and the log learns whether it is back.
void bring_back(job& j, const serving_release& old) {
  j.log().line("starting the previous release " + old.hash + " again on port " + std::to_string(j.in.stable_port));
  wait_port_free(j.in.stable_port);
  auto l = launch_of(j, old.hash, j.in.stable_port);
  l.probe_every = switch_probe_interval;
  l.essential = true;  // an open process breaker does not keep it down either
  // Bringing it back is not given up for a cancel or a shutdown: only when the owner is gone.
  l.give_up = [&j] { return j.host.stop_requested() == stop_request::abandoned; };
  instance_ref back;
  if (auto s = launch_release(j.tools.driver, j.tools.guards, l, &back); !s) {
    j.log().line("error: the previous release did not come back: " + s.message());
    j.add_event(ev::production_exited, {{"reason", "the previous release did not come back"}});
    return;
  }
  auto data = to_json(back);
  data["hash"] = old.hash;
  data["cause"] = "restored";
  j.add_event(ev::production_started, data);
}

void stop_serving_directly(job& j, const serving_release& old, const std::string& what) {
  stop_instance(j, old.instance, what);
  j.undo.push("start the previous release again", [&j, old] { bring_back(j, old); });
  if (!wait_port_free(j.in.stable_port))
    j.fail("switch_failed", fmt::format("port {} is held by a process berth does not manage", j.in.stable_port));
}

class direct_switch final : public switcher {
 public:
  std::string switch_message() const override { return "moving the stable port to the new release"; }
  std::string drain_message() const override { return "stopping the candidate and cleaning up"; }

  instance_ref switch_to(job& j, const std::string& hash, const instance_ref&, const serving_release& old) override {
    // The new release must be started after the old one stops: with the process backend's
    // breaker open that start would be refused, so leave the serving release alone.
    auto backend = backend_of(j.in.spec.runtime);
    if (auto b = j.tools.guards.breakers().get(backend).snapshot(); b.state == breaker_state::open)
      j.fail("backend_unavailable", fmt::format("the {} backend's circuit breaker is open (last error: {}); the serving "
                                                "release was left alone",
                                                backend, b.last_error));
    auto t0 = clock_type::now();
    if (!old.instance.empty()) stop_serving_directly(j, old, "the serving release");
    else if (!wait_port_free(j.in.stable_port))
      j.fail("switch_failed", fmt::format("port {} is held by a process berth does not manage", j.in.stable_port));
    auto boot0 = clock_type::now();
    auto l = launch_of(j, hash, j.in.stable_port);
    l.probe_every = switch_probe_interval;
    instance_ref live;
    if (auto s = launch_release(j.tools.driver, j.tools.guards, l, &live); !s) {
      if (j.give_up() && !is_backend_unavailable(s)) j.gave_up();  // cancelled: the undo brings the old one back
      j.fail(is_backend_unavailable(s) ? "backend_unavailable" : "switch_failed",
             "the new release did not come up on the stable port: " + s.message());
    }
    j.undo.push("stop the new release", [&j, live] { stop_instance(j, live, "the new release"); });
    record_duration(j, "promote_boot", boot0);
    if (old.instance.empty()) {
      j.resources["gap_ms"] = 0;
      j.resources["gap_us"] = 0;
    } else {
      record_duration(j, "gap", t0);
    }
    j.resources["pid"] = live.pid;
    j.resources["port"] = live.port;
    j.log().line(fmt::format("release {} serves port {} (pid {}); gap {} ms", hash, j.in.stable_port, live.pid,
                             j.resources["gap_ms"].get<int64_t>()));
    return live;
  }

  // The old release left the stable port at the switch; what is left is the candidate on the
  // spare port, which took no traffic.
  void drain(job& j, const instance_ref& candidate, const serving_release&) override {
    auto t0 = clock_type::now();
    stop_instance(j, candidate, "the candidate");
    record_duration(j, "stop_candidate", t0);
    j.resources["candidate"] = nullptr;
    j.host.release_port(candidate.port, "candidate of " + j.in.id);
  }
};

class proxy_switch final : public switcher {
 public:
  std::string switch_message() const override { return "pointing the proxy at the new release"; }
  std::string drain_message() const override { return "draining the old release"; }

  instance_ref switch_to(job& j, const std::string& hash, const instance_ref& candidate,
                         const serving_release& old) override {
    auto t0 = clock_type::now();
    // A release still serving the stable port directly (berth was in direct mode) holds the
    // port the proxy must listen on: it stops first.
    stopped_old_ = !old.instance.empty() && old.instance.port == j.in.stable_port;
    if (stopped_old_) stop_serving_directly(j, old, "the release serving the stable port directly");
    // Registered before asking: the proxy records a route before Caddy takes it, so a switch
    // that failed may still have left the route pointing at the candidate, which stops.
    j.undo.push("point the route back", [&j, old, stopped = stopped_old_] {
      if (!old.instance.empty() && !stopped) {
        j.log().line(fmt::format("pointing the proxy back at release {} on port {}", old.hash, old.instance.port));
        if (auto s = j.host.set_route(old.instance.port); !s)
          j.log().line("error: the proxy did not take the route back: " + s.message());
      } else {  // nothing else serves: no route rather than one to a port given back
        j.log().line("taking the route away until a release serves");
        if (auto s = j.host.set_route(0); !s) j.log().line("error: the proxy did not take the route: " + s.message());
      }
    });
    if (auto s = j.host.set_route(candidate.port); !s)
      j.fail(is_backend_unavailable(s) ? "backend_unavailable" : "switch_failed",
             "the proxy did not switch: " + s.message());
    if (stopped_old_) {
      record_duration(j, "gap", t0);
    } else {
      j.resources["gap_ms"] = 0;
      j.resources["gap_us"] = 0;
    }
    j.resources["pid"] = candidate.pid;
    j.resources["port"] = candidate.port;
    j.log().line(fmt::format("the proxy sends port {} and the host to release {} on port {} (pid {})",
                             j.in.stable_port, hash, candidate.port, candidate.pid));
    return candidate;  // it keeps its port: now it is the release
  }

  void drain(job& j, const instance_ref&, const serving_release& old) override {
    if (old.instance.empty() || stopped_old_) return;
    j.log().line(fmt::format("the old release {} drains for {} ms", old.hash, j.in.drain.count()));
    // Only the end of berth's shutdown grace cuts the drain short.
    auto until = clock_type::now() + j.in.drain;
    while (clock_type::now() < until && j.host.stop_requested() != stop_request::shutdown_now)
      std::this_thread::sleep_for(std::min<clock_type::duration>(50ms, until - clock_type::now()));
    stop_instance(j, old.instance, "the old release");
    if (old.instance.port != j.in.stable_port) j.host.release_port(old.instance.port, "old release of " + j.in.id);
  }

 private:
  bool stopped_old_ = false;
};

}  // namespace

std::unique_ptr<switcher> make_switcher(const deploy_inputs& in) {
  if (in.proxy) return std::make_unique<proxy_switch>();
  return std::make_unique<direct_switch>();
}

}  // namespace berth::pipeline
