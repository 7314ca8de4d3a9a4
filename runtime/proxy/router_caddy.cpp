// The Caddy engine: the whole config, derived from the table, loaded at every change (Caddy 2.6
// re-provisions everything on any admin change, so a change reaches every project's
// connections: see README "The proxy" for the figures that made HAProxy the default).
#include <filesystem>
#include <fstream>

#include "runtime/files/private_dir.hpp"
#include "runtime/proxy/caddy.hpp"
#include "runtime/proxy/router.hpp"

namespace berth {

namespace {

namespace fs = std::filesystem;

// Caddy 2.6 has no weighted upstream policy and no per-upstream error or latency figures, so
// canaries need HAProxy.
status refuse_splits(const route_table& t) {
  for (const auto& r : t.routes)
    if (r.split.port != 0) return status::invalid_argument("caddy cannot split traffic (route " + r.id + ")");
  return status::ok();
}

class caddy_router final : public router {
 public:
  caddy_router(std::string dir, std::string binary) : dir_(std::move(dir)), binary_(std::move(binary)) {}

  const char* name() const override { return "caddy"; }

  status prepare(const route_table& t, instance_spec* spec) override {
    if (auto s = refuse_splits(t); !s) return s;
    auto layout = layout_of(t);
    if (auto s = check_layout(layout); !s) return s;
    if (auto s = make_private_dir(fs::path(layout.admin_socket).parent_path().string()); !s) return s;
    // No Caddy runs here (a live one was adopted or stopped): a socket left by a dead one would
    // make Caddy's bind fail.
    std::error_code ec;
    fs::remove(layout.admin_socket, ec);
    auto file = (fs::path(dir_) / "caddy.json").string();
    {
      std::ofstream config(file, std::ios::trunc);
      config << caddy_config(layout).dump(2);
      if (!config) return status::io_error("cannot write Caddy's config file");
    }
    spec->labels = {"", "proxy", ""};
    spec->workdir = dir_;
    spec->command = {binary_, "run", "--config", file};
    spec->env = {{"HOME", dir_}, {"XDG_DATA_HOME", dir_ + "/data"}, {"XDG_CONFIG_HOME", dir_ + "/config"}};
    spec->log = fs::path(dir_) / "caddy.log";
    return status::ok();
  }

  status wait_ready(std::chrono::milliseconds timeout) override {
    return wait_admin_ready(caddy_admin_socket(dir_), timeout);
  }

  status apply(const route_table& t) override {
    if (auto s = refuse_splits(t); !s) return s;
    auto layout = layout_of(t);
    if (auto s = check_layout(layout); !s) return s;
    return caddy_admin(layout.admin_socket).load(caddy_config(layout));
  }

  std::string admin_endpoint() const override { return "unix socket <data>/proxy/admin/caddy.sock"; }

 private:
  proxy_layout layout_of(const route_table& t) const {
    proxy_layout l;
    l.admin_socket = caddy_admin_socket(dir_);
    l.http_port = t.http_port;
    l.routes = t.routes;
    return l;
  }

  std::string dir_, binary_;
};

}  // namespace

std::unique_ptr<router> make_caddy_router(std::string dir, std::string binary) {
  return std::make_unique<caddy_router>(std::move(dir), std::move(binary));
}

}  // namespace berth
