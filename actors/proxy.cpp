#include "actors/proxy.hpp"

#include <filesystem>
#include <fstream>

#include <spdlog/spdlog.h>

#include "actors/blocking.hpp"
#include "actors/names.hpp"
#include "messages/atoms.hpp"
#include "messages/errors.hpp"
#include "runtime/breaker.hpp"
#include "runtime/caddy.hpp"
#include "runtime/layout.hpp"
#include "runtime/ports.hpp"
#include "runtime/process_driver.hpp"

namespace berth {

namespace {

using self_ptr = caf::stateful_actor<proxy_actor_state>*;
using json = nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr auto store_timeout = 30s;
constexpr auto backoff_base = 250ms;
constexpr auto backoff_max = 10s;
constexpr auto admin_ready_timeout = 10s;
// A config load retries transient failures (call_backend, "proxy" backend) for at most this
// long, so that callers waiting on a route (60 s) get an answer.
constexpr auto load_retry_deadline = 40s;

process_driver& driver() {
  static process_driver d;
  return d;
}

process_handle handle_of(const preview_launched& p) { return {p.pid, p.start_time, p.pgid}; }

proxy_layout layout_of(const proxy_record& rec) {
  proxy_layout l;
  l.admin_port = rec.admin_port;
  l.http_port = rec.http_port;
  for (auto& [id, r] : rec.routes) l.routes.push_back(r);
  return l;
}

void append(self_ptr self, std::vector<new_event> events, std::function<void()> then) {
  self->request(names::whereis(self->system(), names::event_store), store_timeout, append_atom_v,
                std::move(events))
      .then(
          [=](std::vector<event_record>& stored) {
            for (auto& e : stored) fold(self->state.rec, e);
            then();
          },
          [=](caf::error& err) {
            spdlog::error("proxy: cannot record events: {}", to_string(err));
            self->quit(err);
          });
}

new_event event(const char* type, const json& data) { return {proxy_stream, type, data.dump()}; }

void launch(self_ptr self);

void watch(self_ptr self) {
  auto p = self->state.rec.caddy;
  auto gen = self->state.generation;
  auto alive = self->state.alive;
  caf::actor me = caf::actor_cast<caf::actor>(self);
  self->spawn<caf::detached>([=](caf::event_based_actor* w) {
    for (;;) {
      auto info = driver().wait(handle_of(p), 1s);
      if (!alive->load()) break;  // berth is stopping: Caddy keeps serving, the next one adopts it
      if (info.status != process_status::running) {
        w->send(me, process_exited{p.pid, p.start_time, info.exit_code, info.term_signal}, gen);
        break;
      }
    }
    w->quit();
  });
}

// Sends Caddy the whole config derived from the log. One load at a time; changes that arrive
// meanwhile go out together with the next one.
void apply(self_ptr self) {
  auto& st = self->state;
  if (st.applying || st.waiting.empty()) return;
  if (st.status != "running") return;  // answered when Caddy is back (launch loads the config)
  st.applying = true;
  auto promises = std::move(st.waiting);
  st.waiting.clear();
  auto config = caddy_config(layout_of(st.rec));
  auto admin = st.rec.admin_port;
  auto result = std::make_shared<status>();
  run_blocking(
      self,
      [=] {
        auto deadline = std::chrono::steady_clock::now() + load_retry_deadline;
        call_options o;
        o.cancelled = [deadline] { return std::chrono::steady_clock::now() >= deadline; };
        o.on_retry = [](int attempt, const status& failure, std::chrono::milliseconds delay) {
          spdlog::warn("proxy: loading Caddy's config failed (attempt {}): {}; retrying in {} ms", attempt,
                       failure.message(), delay.count());
        };
        *result = call_backend("proxy", [&] { return caddy_admin(admin).load(config); }, o);
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

void schedule_restart(self_ptr self, const std::string& why) {
  auto& st = self->state;
  auto now = std::chrono::steady_clock::now();
  auto delay = std::min<std::chrono::milliseconds>(backoff_base * (1 << std::min<size_t>(st.restarts.size(), 6)), backoff_max);
  while (!st.restarts.empty() && now - st.restarts.front() > 60s) st.restarts.pop_front();
  st.restarts.push_back(now);
  st.status = "restarting";
  st.reason = why;
  spdlog::warn("proxy: {}; starting Caddy again in {} ms", why, delay.count());
  self->delayed_send(self, delay, retry_atom_v, st.generation);
}

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

uint16_t choose_port(uint16_t configured, uint16_t previous) {
  if (configured != 0) return configured;
  if (previous != 0 && port_is_free(previous)) return previous;
  return free_loopback_port();
}

// Writes the config derived from the log and starts `caddy run` with it.
void launch(self_ptr self) {
  auto& st = self->state;
  auto gen = ++st.generation;
  st.status = "starting";
  auto layout = layout_of(st.rec);
  layout.admin_port = choose_port(st.settings.admin_port, st.rec.admin_port);
  layout.http_port = choose_port(st.settings.http_port, st.rec.http_port);
  auto dir = st.dir;
  auto binary = st.settings.caddy;
  auto started = std::make_shared<process_handle>();
  auto result = std::make_shared<status>();
  auto migration = std::make_shared<std::string>();
  run_blocking(
      self,
      [=] {
        if (auto s = make_dirs({dir}); !s) {
          *result = s;
          return;
        }
        *migration = enable_accept_queue_migration();
        auto file = (fs::path(dir) / "caddy.json").string();
        {
          std::ofstream out(file, std::ios::trunc);
          out << caddy_config(layout).dump(2);
          if (!out) {
            *result = status::io_error("cannot write " + file);
            return;
          }
        }
        process_spec ps;
        ps.argv = {binary, "run", "--config", file};
        ps.cwd = dir;
        ps.env = {{"HOME", dir}, {"XDG_DATA_HOME", dir + "/data"}, {"XDG_CONFIG_HOME", dir + "/config"}};
        ps.stdout_path = ps.stderr_path = dir + "/caddy.log";
        if (auto s = driver().start(ps, started.get()); !s) {
          *result = s;
          return;
        }
        *result = wait_admin_ready(layout.admin_port, admin_ready_timeout);
        if (*result && driver().inspect(*started).status != process_status::running)
          *result = status::io_error("caddy exited at start (see " + dir + "/caddy.log)");
        if (!*result) driver().stop(*started, 2s);
      },
      [=](const std::string& failure) {
        if (gen != self->state.generation) return;
        if (!failure.empty() || !*result)
          return schedule_restart(self, "cannot start Caddy: " + (failure.empty() ? result->message() : failure));
        json data{{"pid", started->pid}, {"start_time", started->start_time}, {"pgid", started->pgid},
                  {"port", layout.admin_port}, {"admin_port", layout.admin_port}, {"http_port", layout.http_port}};
        append(self, {event(ev::proxy_started, data)}, [=] {
          self->state.status = "running";
          self->state.reason.clear();
          self->state.accept_queue_migration = *migration;
          spdlog::info("proxy: tcp_migrate_req {}", *migration);
          spdlog::info("proxy: Caddy serving (pid {}, admin 127.0.0.1:{}, http port {}, {} routes)",
                       started->pid, layout.admin_port, layout.http_port, self->state.rec.routes.size());
          watch(self);
          // Changes that waited for Caddy are in the config it started with.
          for (auto& rp : self->state.waiting) rp.deliver(true);
          self->state.waiting.clear();
        });
      });
}

// After a berth restart: keep a Caddy we started (same pid and start time) and give it the
// config from the log; otherwise start one.
void adopt(self_ptr self) {
  auto& st = self->state;
  if (!st.rec.running || !driver().is_ours(handle_of(st.rec.caddy))) return launch(self);
  auto gen = ++st.generation;
  auto config = caddy_config(layout_of(st.rec));
  auto admin = st.rec.admin_port;
  auto result = std::make_shared<status>();
  auto migration = std::make_shared<std::string>();
  auto caddy = handle_of(st.rec.caddy);
  run_blocking(
      self,
      [=] {
        try {
          *migration = enable_accept_queue_migration();
          // One attempt, recorded by the "proxy" breaker but never refused by it: when the
          // adopted Caddy does not take its config, starting a new one is the retry.
          call_options o;
          o.essential = true;
          o.max_retries = 0;
          *result = call_backend("proxy", [&] { return caddy_admin(admin).load(config); }, o);
        } catch (const std::exception& e) {
          *result = status::io_error(std::string("unexpected error: ") + e.what());
        }
        if (!*result) driver().stop(caddy, 2s);  // here, off the scheduler
      },
      [=](const std::string& failure) {
        if (gen != self->state.generation) return;
        self->state.accept_queue_migration = *migration;
        if (!failure.empty() || !*result) return launch(self);
        self->state.status = "running";
        spdlog::info("proxy: adopted Caddy (pid {}), {} routes re-applied", self->state.rec.caddy.pid,
                     self->state.rec.routes.size());
        watch(self);
      });
}

json status_json(self_ptr self) {
  auto& st = self->state;
  json j{{"mode", "proxy"},
         {"status", st.status},
         {"pid", st.status == "running" ? json(st.rec.caddy.pid) : json(nullptr)},
         {"admin_port", st.rec.admin_port},
         {"http_port", st.rec.http_port},
         {"routes", st.rec.routes.size()},
         {"restarts", st.restarts.size()},
         {"tcp_migrate_req", st.accept_queue_migration}};
  if (!st.reason.empty()) j["reason"] = st.reason;
  return j;
}

}  // namespace

caf::behavior proxy_actor(self_ptr self, proxy_settings settings, std::string data_dir) {
  self->state.settings = std::move(settings);
  self->state.dir = (fs::path(data_dir) / "proxy").string();
  self->request(names::whereis(self->system(), names::event_store), store_timeout, read_stream_atom_v,
                std::string{proxy_stream}, uint64_t{0}, uint64_t{0})
      .await(
          [=](std::vector<event_record>& events) {
            for (auto& e : events) fold(self->state.rec, e);
            adopt(self);
          },
          [=](caf::error& err) { self->quit(err); });
  return {
      [=](route_atom, proxy_route& r) -> caf::result<bool> {
        auto it = self->state.rec.routes.find(r.id);
        if (it != self->state.rec.routes.end() && to_json(it->second) == to_json(r) &&
            self->state.status == "running")
          return true;  // already served
        auto rp = self->make_response_promise();
        append(self, {event(ev::route_set, to_json(r))}, [=]() mutable {
          self->state.waiting.push_back(rp);
          apply(self);
        });
        return rp;
      },
      [=](unroute_atom, const std::string& id) -> caf::result<bool> {
        if (self->state.rec.routes.count(id) == 0) return true;
        auto rp = self->make_response_promise();
        append(self, {event(ev::route_removed, {{"id", id}})}, [=]() mutable {
          self->state.waiting.push_back(rp);
          apply(self);
        });
        return rp;
      },
      [=](status_atom) { return status_json(self).dump(); },
      [=](process_exited& x, uint64_t gen) {
        if (gen != self->state.generation) return;
        auto why = "Caddy " + describe(x);
        append(self, {event(ev::proxy_exited, {{"reason", why}})}, [=] { schedule_restart(self, why); });
      },
      [=](retry_atom, uint64_t gen) {
        if (gen != self->state.generation || self->state.status != "restarting") return;
        launch(self);
      },
  };
}

}  // namespace berth
