// proxy — owns the Caddy process and its routes (proxy switch mode). The routes are events in
// the stream `proxy`; Caddy always gets the whole config derived from them (POST /load through
// its admin API: graceful, no dropped connections), so after a crash of Caddy or of berth the
// routes come back from the log. Caddy is kept like any instance (actors/keeper.hpp): restarted
// with backoff when it dies, adopted (same identity) after a berth restart, and left running
// when berth stops, so a berth upgrade does not take sites down.
//   (route_atom, proxy_route)      -> bool once Caddy serves it (error: Caddy did not take it)
//   (unroute_atom, std::string id) -> bool
//   (status_atom)                  -> proxy_view
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "actors/keeper.hpp"
#include "config/config.hpp"
#include "messages/proxy.hpp"
#include "messages/views.hpp"
#include "runtime/driver.hpp"
#include "runtime/resilience/backends.hpp"

namespace berth {

struct proxy_actor_state {
  proxy_settings settings;
  std::string dir;  // <data>/proxy: Caddy's config file, HOME and log
  std::shared_ptr<runtime_driver> driver;
  std::shared_ptr<backend_guards> guards;
  proxy_record rec;
  std::string status = "starting";     // starting | running | restarting
  std::string accept_queue_migration;  // net.ipv4.tcp_migrate_req: on | turned on | off (why)
  keeper caddy;
  bool applying = false;
  std::vector<caf::response_promise> waiting;  // changes not yet sent to Caddy
  static inline const char* name = "proxy";
};

caf::behavior proxy_actor(caf::stateful_actor<proxy_actor_state>* self, proxy_settings settings,
                          std::string data_dir, std::shared_ptr<runtime_driver> driver,
                          std::shared_ptr<backend_guards> guards, std::shared_ptr<berth_metrics> metrics = nullptr);

}  // namespace berth
