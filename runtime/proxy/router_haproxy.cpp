// The HAProxy engine: every change writes the files, reloads only when the listeners changed
// (a project's stable port came or went), and then sets the maps of every live worker, old
// ones included. A route flip or a canary split is never a reload (runtime/proxy/haproxy.hpp
// says why).
#include <filesystem>

#include "runtime/files/fs_util.hpp"
#include "runtime/files/private_dir.hpp"
#include "runtime/proxy/haproxy.hpp"
#include "runtime/proxy/router.hpp"

namespace berth {

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr auto reload_timeout = 10s;

class haproxy_router final : public router {
 public:
  haproxy_router(std::string dir, std::string binary) : dir_(std::move(dir)), binary_(std::move(binary)) {}

  const char* name() const override { return "haproxy"; }

  status prepare(const route_table& t, instance_spec* spec) override {
    auto l = layout_of(t);
    if (auto s = check_router_layout(l); !s) return s;
    if (auto s = make_private_dir(dir_); !s) return s;
    // No HAProxy runs here (a live one was adopted or stopped): sockets left by a dead one go.
    std::error_code ec;
    fs::remove(fs::path(dir_) / "admin.sock", ec);
    fs::remove(fs::path(dir_) / "master.sock", ec);
    if (auto s = write_router_files(l); !s) return s;
    spec->labels = {"", "proxy", ""};
    spec->workdir = dir_;
    spec->command = haproxy_command(binary_, dir_);
    spec->env = {{"HOME", dir_}};
    spec->log = fs::path(dir_) / "haproxy.log";
    return status::ok();
  }

  status wait_ready(std::chrono::milliseconds timeout) override { return wait_router_ready(dir_, timeout); }

  status apply(const route_table& t) override {
    auto l = layout_of(t);
    if (auto s = check_router_layout(l); !s) return s;
    // The config the running master read last is the file on disk (written before its start
    // or its last reload); only a different one needs a reload.
    auto cfg = (fs::path(dir_) / "haproxy.cfg").string();
    auto running = fsutil::read_file(cfg);
    bool listeners_changed = running != haproxy_config(l);
    if (auto s = write_router_files(l); !s) return s;
    haproxy_admin admin(dir_);
    if (listeners_changed) {
      if (auto s = admin.reload(reload_timeout); !s) {
        // The old worker still serves the old config: the file must say so, or the next
        // change would take the failed config for the running one.
        fsutil::write_atomically(cfg, running);
        return s;
      }
    }
    // Splits are maps too (canary.map): a table without them removes every split, also from
    // old workers, and never reloads.
    return admin.sync_maps(maps_of(l));
  }

  std::string admin_endpoint() const override { return "unix sockets in <data>/proxy/haproxy"; }

 private:
  router_layout layout_of(const route_table& t) const {
    router_layout l;
    l.dir = dir_;
    l.http_port = t.http_port;
    l.ask_port = t.ask_port;
    l.routes = t.routes;
    return l;
  }

  std::string dir_, binary_;
};

}  // namespace

std::unique_ptr<router> make_haproxy_router(std::string dir, std::string binary) {
  return std::make_unique<haproxy_router>(std::move(dir), std::move(binary));
}

}  // namespace berth
