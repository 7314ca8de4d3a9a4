// tls_front — owns Caddy as the sites' TLS front (--sites-tls acme|internal): HTTPS on the
// sites' https port, HTTP redirected to it, certificates on demand (runtime/proxy/tls_front.hpp).
// Its config has nothing per project, so nothing a project does ever reaches it: it is written
// at start from the settings and loaded into a running front only when those changed. Kept like
// the router (actors/keeper.hpp): restarted with backoff, adopted after a berth restart, left
// running when berth stops. Its life is in the stream `tls_front` (proxy_started/proxy_exited).
//   (status_atom) -> std::string  "running" | "starting" | "restarting"
#pragma once
#include <memory>
#include <string>

#include <caf/all.hpp>

#include "actors/keeper.hpp"
#include "config/config.hpp"
#include "messages/proxy.hpp"
#include "runtime/driver.hpp"
#include "runtime/proxy/tls_front.hpp"
#include "runtime/resilience/backends.hpp"

namespace berth {

constexpr const char* tls_front_stream = "tls_front";

struct tls_front_state {
  tls_front_settings settings;
  std::string dir;   // <data>/proxy/front: config, storage (certificates), admin socket, log
  std::string caddy;  // the binary
  std::shared_ptr<runtime_driver> driver;
  proxy_record rec;  // only the instance part is used
  std::string status = "starting";
  keeper process;
  static inline const char* name = "tls_front";
};

caf::behavior tls_front_actor(caf::stateful_actor<tls_front_state>* self, proxy_settings settings,
                              std::string data_dir, std::shared_ptr<runtime_driver> driver,
                              std::shared_ptr<berth_metrics> metrics = nullptr);

}  // namespace berth
