// The routing engine the proxy actor drives: HAProxy (default; runtime/proxy/haproxy.hpp) or
// Caddy (runtime/proxy/caddy.hpp, kept for hosts without HAProxy and as the measured peer).
//
// No actor code: every verb blocks (run them off CAF's scheduler threads). One owner (the proxy
// actor) calls them, one at a time; a router keeps no state between calls, so a restarted berth
// can drive an engine a previous berth started.
#pragma once
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "messages/proxy.hpp"
#include "runtime/driver.hpp"
#include "runtime/status.hpp"

namespace berth {

// Everything an engine serves: the routes, and its shared listeners.
struct route_table {
  uint16_t http_port = 0;  // shared host-matched listener (plain HTTP); 0 = none
  uint16_t ask_port = 0;   // on-demand TLS ask (HAProxy only); 0 = none
  std::vector<proxy_route> routes;
};

class router {
 public:
  virtual ~router() = default;
  // "haproxy" | "caddy".
  virtual const char* name() const = 0;
  // Checks `t` and writes what the engine reads at start; fills *spec with how to run it (in
  // the foreground: the process berth keeps). invalid_argument / io_error.
  virtual status prepare(const route_table& t, instance_spec* spec) = 0;
  // Waits until a just-started engine answers its admin interface. io_error after `timeout`.
  virtual status wait_ready(std::chrono::milliseconds timeout) = 0;
  // Makes the running engine serve exactly `t` (a full table, not a diff), touching only what
  // changed where the engine allows it. io_error when it did not take it (retry-safe).
  virtual status apply(const route_table& t) = 0;
  // Where its admin interface lives (for log lines and status; never secret).
  virtual std::string admin_endpoint() const = 0;
};

// HAProxy's private folder under a data dir: <data>/proxy/haproxy, absolute (its socket paths
// must be, and the traffic meter binds its socket there too).
inline std::string haproxy_dir_of(const std::string& data_dir) {
  return (std::filesystem::absolute(data_dir) / "proxy" / "haproxy").lexically_normal().string();
}

// dir: the engine's private folder (absolute, made 0700 here), binary: the executable.
std::unique_ptr<router> make_haproxy_router(std::string dir, std::string binary);
std::unique_ptr<router> make_caddy_router(std::string dir, std::string binary);

}  // namespace berth
