// proxy — owns the router process (HAProxy, or Caddy with --proxy-engine caddy) and its routes
// (proxy switch mode). The routes are events in the stream `proxy`; the router always gets the
// whole table derived from them (runtime/proxy/router.hpp: HAProxy changes only what changed,
// through its runtime API), so after a crash of the router or of berth the routes come back from
// the log. The router is kept like any instance (actors/keeper.hpp): restarted with backoff when
// it dies, adopted (same identity) after a berth restart, and left running when berth stops, so
// a berth upgrade does not take sites down.
//   (route_atom, proxy_route)      -> bool once the router serves it (error: it did not take it)
//   (unroute_atom, std::string id) -> bool
//   (canary_atom, std::string id, traffic_split) -> bool once the router serves the split
//                                   (port 0 ends it; held in memory only, never logged)
//   (status_atom)                  -> proxy_view
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "actors/keeper.hpp"
#include "config/config.hpp"
#include "messages/proxy.hpp"
#include "messages/views.hpp"
#include "runtime/driver.hpp"
#include "runtime/proxy/router.hpp"
#include "runtime/resilience/backends.hpp"

namespace berth {

struct proxy_actor_state {
  proxy_settings settings;
  std::string dir;  // <data>/proxy: the router's files (haproxy/ or Caddy's config, HOME and log)
  std::shared_ptr<router> engine;  // settings.engine, resolved at start (haproxy | caddy)
  std::shared_ptr<runtime_driver> driver;
  std::shared_ptr<backend_guards> guards;
  proxy_record rec;
  std::map<std::string, traffic_split> splits;  // canaries by route id (memory only: see traffic_split)
  std::string status = "starting";     // starting | running | restarting
  std::string accept_queue_migration;  // net.ipv4.tcp_migrate_req: on | turned on | off (why)
  keeper process;  // the router's process
  bool applying = false;
  std::vector<caf::response_promise> waiting;  // changes not yet sent to Caddy
  static inline const char* name = "proxy";
};

caf::behavior proxy_actor(caf::stateful_actor<proxy_actor_state>* self, proxy_settings settings,
                          std::string data_dir, std::shared_ptr<runtime_driver> driver,
                          std::shared_ptr<backend_guards> guards, std::shared_ptr<berth_metrics> metrics = nullptr);

}  // namespace berth
