#include "actors/tls_front.hpp"

#include <filesystem>

#include <spdlog/spdlog.h>

#include "actors/append.hpp"
#include "actors/blocking.hpp"
#include "actors/names.hpp"
#include "messages/atoms.hpp"
#include "runtime/files/fs_util.hpp"
#include "runtime/files/private_dir.hpp"
#include "runtime/proxy/caddy.hpp"

namespace berth {

namespace {

using self_ptr = caf::stateful_actor<tls_front_state>*;
using json = nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr auto store_timeout = 30s;
constexpr auto admin_ready_timeout = 10s;

std::string config_file(const std::string& dir) { return (fs::path(dir) / "caddy.json").string(); }

// The config file is replaced whole (an adopted front is compared with it at the next start).
status write_config(const std::string& dir, const std::string& text) {
  return fsutil::write_atomically(config_file(dir), text);
}

void record(self_ptr self, const char* type, json data, std::function<void()> then) {
  append_events(self, {{tls_front_stream, type, dump_json(data)}}, true, "tls_front",
                [self, then](std::vector<event_record>& stored) {
                  for (auto& e : stored) fold(self->state.rec, e);
                  if (then) then();
                });
}

std::function<status(instance_ref*)> front_start(self_ptr self) {
  auto& st = self->state;
  return [s = st.settings, dir = st.dir, caddy = st.caddy, driver = st.driver](instance_ref* out) {
    if (auto c = check_tls_front(s); !c) return c;
    for (auto& d : {dir, s.storage_dir, fs::path(s.admin_socket).parent_path().string()})
      if (auto c = make_private_dir(d); !c) return c;
    std::error_code ec;
    fs::remove(s.admin_socket, ec);  // left by a dead one: Caddy's bind would fail
    if (auto c = write_config(dir, tls_front_config(s).dump(2)); !c) return c;
    instance_spec spec;
    spec.labels = {"", "tls_front", ""};
    spec.workdir = dir;
    spec.command = tls_front_command(caddy, config_file(dir));
    spec.env = {{"HOME", dir}, {"XDG_DATA_HOME", dir + "/data"}, {"XDG_CONFIG_HOME", dir + "/config"}};
    spec.log = fs::path(dir) / "caddy.log";
    if (auto c = driver->start(spec, out); !c) return c;
    auto c = wait_admin_ready(s.admin_socket, admin_ready_timeout);
    if (c && !driver->inspect(*out).running()) c = status::io_error("the TLS front exited at start (see its log)");
    if (!c) driver->stop(*out, 2s);
    return c;
  };
}

void init_keeper(self_ptr self) {
  keeper_policy policy;
  policy.restart = {250ms, 10s, std::numeric_limits<size_t>::max(), 60s};  // never given up on
  policy.pass_interval = 0ms;
  keeper::hooks h;
  h.what = "proxy: the TLS front (Caddy)";
  h.start = [self] { return front_start(self); };
  h.died = [self](const std::string& why, std::function<void()> then) {
    self->state.status = "restarting";
    record(self, ev::proxy_exited, {{"reason", why}}, then);
  };
  h.started = [self](const instance_ref& r, const char* why, std::function<void()> then) {
    auto data = to_json(r);
    data["cause"] = why;
    data["engine"] = "caddy";
    record(self, ev::proxy_started, data, [self, r, then] {
      auto& st = self->state;
      st.status = "running";
      spdlog::info("proxy: TLS front serving (pid {}, https port {}, http port {}, certificates: {})", r.pid,
                   st.settings.https_port, st.settings.http_port, st.settings.mode);
      if (then) then();
    });
  };
  h.crash_loop = [](const std::string&) {};
  h.exits = [self] { return self->state.rec.exits_us; };
  self->state.process.init(self, self->state.driver, policy, std::move(h));
}

// Keep a front we started; it gets the config of today's settings only when they changed (the
// one reload of its life). Otherwise start one.
void adopt(self_ptr self) {
  auto& st = self->state;
  auto result = std::make_shared<status>(status::io_error("not running"));
  auto running_one = st.rec.caddy;
  run_blocking(
      self,
      [=, s = st.settings, dir = st.dir, driver = st.driver, running = st.rec.running] {
        if (!running || !driver->inspect(running_one).running()) return;
        auto config = tls_front_config(s);
        if (fsutil::read_file(config_file(dir)) == config.dump(2)) {
          *result = caddy_admin(s.admin_socket).ping();
        } else {
          *result = caddy_admin(s.admin_socket).load(config);
          if (*result) *result = write_config(dir, config.dump(2));
        }
        if (!*result) driver->stop(running_one, 2s);
      },
      [=](const std::string& failure) {
        auto& st = self->state;
        if (failure.empty() && *result) {
          st.status = "running";
          st.process.keep(running_one);
          spdlog::info("proxy: adopted the TLS front (pid {})", running_one.pid);
          return;
        }
        st.process.start_now(front_start(self), [self](const status& failure) {
          if (failure) return;
          self->state.status = "restarting";
          self->state.process.restart_later("cannot start the TLS front: " + failure.message());
        });
      });
}

}  // namespace

caf::behavior tls_front_actor(self_ptr self, proxy_settings p, std::string data_dir,
                              std::shared_ptr<runtime_driver> driver, std::shared_ptr<berth_metrics> metrics) {
  auto& st = self->state;
  st.dir = fs::absolute(fs::path(data_dir) / "proxy" / "front").lexically_normal().string();
  st.caddy = p.caddy;
  st.driver = std::move(driver);
  auto& s = st.settings;
  s.mode = p.sites_tls;
  s.acme_directory = p.acme_directory;
  s.acme_email = p.acme_email;
  s.acme_ca_root = p.acme_ca_root;
  s.listen_host = p.listen_host;
  s.http_port = p.http_port;
  s.https_port = p.https_port;
  s.upstream_port = p.inner_port;
  s.ask_port = p.ask_port;
  s.admin_socket = caddy_admin_socket(st.dir);
  s.storage_dir = st.dir + "/data";
  init_keeper(self);
  st.process.measure(std::move(metrics), "tls_front");
  self->request(names::whereis(self->system(), names::event_store), store_timeout, read_stream_atom_v,
                std::string{tls_front_stream}, uint64_t{0}, uint64_t{0})
      .await(
          [=](std::vector<event_record>& events) {
            for (auto& e : events) fold(self->state.rec, e);
            adopt(self);
          },
          [=](caf::error& err) { self->quit(err); });
  return self->state.process.handlers().or_else([=](status_atom) { return self->state.status; });
}

}  // namespace berth
