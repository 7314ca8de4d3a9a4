#include "actors/proxy.hpp"

#include <filesystem>
#include <fstream>

#include <spdlog/spdlog.h>

#include "actors/append.hpp"
#include "actors/blocking.hpp"
#include "actors/names.hpp"
#include "messages/atoms.hpp"
#include "messages/errors.hpp"
#include "runtime/files/layout.hpp"
#include "runtime/files/private_dir.hpp"
#include "runtime/proxy/router.hpp"
#include "runtime/resilience/breaker.hpp"

namespace berth {

namespace {

using self_ptr = caf::stateful_actor<proxy_actor_state>*;
using json = nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr auto store_timeout = 30s;
constexpr auto admin_ready_timeout = 10s;
// A config load retries transient failures (backend_guards::call, "proxy" backend) for at most this
// long, so that callers waiting on a route (60 s) get an answer.
constexpr auto load_retry_deadline = 40s;

// What the router serves: the routes from the log, and the shared listeners from the settings
// (the host listener sits behind the TLS front when sites have HTTPS).
route_table table_of(const proxy_actor_state& st) {
  route_table t;
  t.http_port = st.settings.tls() ? st.settings.inner_port : st.settings.http_port;
  t.ask_port = st.settings.tls() ? st.settings.ask_port : 0;
  for (auto& [id, r] : st.rec.routes) {
    t.routes.push_back(r);
    if (auto it = st.splits.find(id); it != st.splits.end()) t.routes.back().split = it->second;
  }
  return t;
}

void record(self_ptr self, std::vector<new_event> events, std::function<void()> then) {
  append_events(self, std::move(events), true, "proxy", [self, then](std::vector<event_record>& stored) {
    for (auto& e : stored) fold(self->state.rec, e);
    if (then) then();
  });
}

new_event event(const char* type, const json& data) { return {proxy_stream, type, dump_json(data)}; }

// Caddy 2.6 rebinds its listeners on every config change; without the kernel moving the
// pending connections of a closed SO_REUSEPORT listener to the new one (Linux >= 5.14), a
// few connections racing a switch are reset. Turned on when berth may (it logs what it did).
std::string enable_accept_queue_migration() {
  const char* knob = "/proc/sys/net/ipv4/tcp_migrate_req";
  std::ifstream in(knob);
  std::string value;
  if (!(in >> value)) return "unsupported (kernel older than 5.14)";
  if (value == "1") return "on";
  std::ofstream out(knob);
  out << "1\n";
  out.flush();
  if (!out) return "off (cannot write " + std::string(knob) + "; connections racing a switch may be reset)";
  return "turned on";
}

// Gives the router the whole table derived from the log. One change at a time; changes that
// arrive meanwhile go out together with the next one.
void apply(self_ptr self) {
  auto& st = self->state;
  if (st.applying || st.waiting.empty()) return;
  if (st.status != "running") return;  // answered when the router is back (it starts with the table)
  st.applying = true;
  auto promises = std::move(st.waiting);
  st.waiting.clear();
  auto table = table_of(st);
  auto engine = st.engine;
  auto b = st.guards;
  auto result = std::make_shared<status>();
  run_blocking(
      self,
      [=] {
        auto deadline = std::chrono::steady_clock::now() + load_retry_deadline;
        call_options o;
        o.cancelled = [deadline] { return std::chrono::steady_clock::now() >= deadline; };
        o.on_retry = [](int attempt, const status& failure, std::chrono::milliseconds delay) {
          spdlog::warn("proxy: the router did not take the routes (attempt {}): {}; retrying in {} ms", attempt,
                       failure.message(), delay.count());
        };
        *result = b->call("proxy", [&] { return engine->apply(table); }, o);
      },
      [=](const std::string& failure) mutable {
        self->state.applying = false;
        for (auto& rp : promises) {
          if (!failure.empty() || !*result)
            rp.deliver(make_error(errc::unavailable,
                                  "the proxy did not take the route: " + (failure.empty() ? result->message() : failure)));
          else
            rp.deliver(true);
        }
        apply(self);
      });
}

// The blocking start of the router with the table derived from the log (made in the actor).
std::function<status(instance_ref*)> router_start(self_ptr self) {
  auto& st = self->state;
  return [engine = st.engine, driver = st.driver, table = table_of(st)](instance_ref* out) {
    instance_spec spec;
    if (auto s = engine->prepare(table, &spec); !s) return s;
    if (auto s = driver->start(spec, out); !s) return s;
    auto s = engine->wait_ready(admin_ready_timeout);
    if (s && !driver->inspect(*out).running())
      s = status::io_error(std::string(engine->name()) + " exited at start (see its log in <data>/proxy)");
    if (!s) driver->stop(*out, 2s);
    return s;
  };
}

// The router serves: the log learns it (and the ports it serves on, which site URLs name), and
// the changes that waited are in the table it started with.
void router_serves(self_ptr self, const instance_ref& r, const char* why, std::function<void()> then) {
  auto& st = self->state;
  auto data = to_json(r);
  data["http_port"] = st.settings.http_port;
  data["https_port"] = st.settings.https_port;
  data["inner_port"] = st.settings.inner_port;
  data["ask_port"] = st.settings.ask_port;
  data["engine"] = st.engine->name();
  data["cause"] = why;
  record(self, {event(ev::proxy_started, data)}, [self, r, then] {
    auto& st = self->state;
    st.status = "running";
    spdlog::info("proxy: {} serving (pid {}, admin API on its unix socket only, host listener on port {}, {} routes)",
                 st.engine->name(), r.pid, table_of(st).http_port, st.rec.routes.size());
    for (auto& rp : st.waiting) rp.deliver(true);
    st.waiting.clear();
    if (then) then();
  });
}

void init_keeper(self_ptr self) {
  keeper_policy policy;
  policy.restart = {250ms, 10s, std::numeric_limits<size_t>::max(), 60s};  // the router is never given up on
  policy.pass_interval = 0ms;  // its exit is seen at once; no probe
  keeper::hooks h;
  h.what = std::string("proxy: ") + self->state.engine->name();
  h.start = [self] { return router_start(self); };
  h.died = [self](const std::string& why, std::function<void()> then) {
    self->state.status = "restarting";
    record(self, {event(ev::proxy_exited, {{"reason", why}})}, then);
  };
  h.started = [self](const instance_ref& r, const char* why, std::function<void()> then) {
    router_serves(self, r, why, then);
  };
  h.crash_loop = [](const std::string&) {};
  h.exits = [self] { return self->state.rec.exits_us; };
  self->state.process.init(self, self->state.driver, policy, std::move(h));
}

// Start-up: keep a router we started (same identity, same engine) and give it the table from the
// log; otherwise start one (after stopping one of the other engine: it holds the ports).
void adopt(self_ptr self) {
  auto& st = self->state;
  auto migration = std::make_shared<std::string>();
  auto result = std::make_shared<status>(status::io_error("not running"));
  auto driver = st.driver;
  auto running_one = st.rec.caddy;
  auto running = st.rec.running;
  auto same_engine = st.rec.engine == st.engine->name();
  auto table = table_of(st);
  auto engine = st.engine;
  auto b = st.guards;
  run_blocking(
      self,
      [=] {
        *migration = enable_accept_queue_migration();
        if (!running || !driver->inspect(running_one).running()) return;
        if (!same_engine) {
          driver->stop(running_one, 5s);
          return;
        }
        // One attempt, recorded by the "proxy" breaker but never refused by it: when the
        // adopted router does not take its table, starting a new one is the retry.
        call_options o;
        o.essential = true;
        o.max_retries = 0;
        *result = b->call("proxy", [&] { return engine->apply(table); }, o);
        if (!*result) driver->stop(running_one, 2s);
      },
      [=](const std::string& failure) {
        auto& st = self->state;
        st.accept_queue_migration = *migration;
        spdlog::info("proxy: tcp_migrate_req {}", *migration);
        if (failure.empty() && *result) {
          st.status = "running";
          st.process.keep(running_one);
          spdlog::info("proxy: adopted {} (pid {}), {} routes re-applied", st.engine->name(), running_one.pid,
                       st.rec.routes.size());
          return;
        }
        // Start one now (a first start is not a restart: no backoff).
        st.process.start_now(router_start(self), [self](const status& failure) {
          if (failure) return;
          self->state.status = "restarting";
          self->state.process.restart_later("cannot start " + std::string(self->state.engine->name()) + ": " +
                                           failure.message());
        });
      });
}

proxy_view status_view(self_ptr self) {
  auto& st = self->state;
  proxy_view v;
  v.status = st.status;
  v.engine = st.engine->name();
  v.sites_tls = st.settings.sites_tls;
  v.http_port = st.rec.http_port;
  v.https_port = st.settings.tls() ? st.settings.https_port : 0;
  v.routes = st.rec.routes.size();
  v.restarts = st.rec.exits_us.size();
  v.tcp_migrate_req = st.accept_queue_migration;
  if (st.status != "running") v.reason = without_paths(st.rec.reason);  // /health needs no token
  return v;
}

// Records a change of the routes, then gives the router the table once it is running.
caf::result<bool> change(self_ptr self, new_event e) {
  auto rp = self->make_response_promise<bool>();
  record(self, {std::move(e)}, [self, rp]() mutable {
    self->state.waiting.push_back(rp);
    apply(self);
  });
  return rp;
}

}  // namespace

caf::behavior proxy_actor(self_ptr self, proxy_settings settings, std::string data_dir,
                          std::shared_ptr<runtime_driver> driver, std::shared_ptr<backend_guards> guards,
                          std::shared_ptr<berth_metrics> metrics) {
  auto& st = self->state;
  st.settings = std::move(settings);
  // Absolute: the router runs in this folder and its admin socket paths must be absolute.
  st.dir = fs::absolute(fs::path(data_dir) / "proxy").lexically_normal().string();
  st.driver = std::move(driver);
  st.guards = std::move(guards);
  if (st.settings.engine == "caddy")
    st.engine = make_caddy_router(st.dir, st.settings.caddy);
  else
    st.engine = make_haproxy_router(haproxy_dir_of(data_dir), st.settings.haproxy);
  init_keeper(self);
  st.process.measure(std::move(metrics), "proxy");
  self->request(names::whereis(self->system(), names::event_store), store_timeout, read_stream_atom_v,
                std::string{proxy_stream}, uint64_t{0}, uint64_t{0})
      .await(
          [=](std::vector<event_record>& events) {
            for (auto& e : events) fold(self->state.rec, e);
            adopt(self);
          },
          [=](caf::error& err) { self->quit(err); });
  return self->state.process.handlers().or_else(
      [=](route_atom, proxy_route& r) -> caf::result<bool> {
        auto it = self->state.rec.routes.find(r.id);
        // A route that moves to another upstream ends its split (the switch after a canary).
        if (it == self->state.rec.routes.end() || it->second.upstream_port != r.upstream_port)
          self->state.splits.erase(r.id);
        if (it != self->state.rec.routes.end() && to_json(it->second) == to_json(r) && self->state.status == "running")
          return true;  // already served
        return change(self, event(ev::route_set, to_json(r)));
      },
      [=](canary_atom, const std::string& id, traffic_split split) -> caf::result<bool> {
        auto& st = self->state;
        auto it = st.splits.find(id);
        bool same = split.port == 0 ? it == st.splits.end() : it != st.splits.end() && it->second == split;
        if (same && st.status == "running") return true;
        if (split.port != 0 && st.rec.routes.count(id) == 0)
          return make_error(errc::not_found, "no route '" + id + "' to split");
        if (split.port == 0)
          st.splits.erase(id);
        else
          st.splits[id] = split;
        auto rp = self->make_response_promise<bool>();
        st.waiting.push_back(rp);
        apply(self);
        return rp;
      },
      [=](unroute_atom, const std::string& id) -> caf::result<bool> {
        self->state.splits.erase(id);
        if (self->state.rec.routes.count(id) == 0) return true;
        return change(self, event(ev::route_removed, {{"id", id}}));
      },
      [=](status_atom) { return status_view(self); });
}

}  // namespace berth
