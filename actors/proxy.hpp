// proxy — owns the Caddy child process and its routes (proxy switch mode). The routes are
// events in the stream `proxy`; Caddy always gets the whole config derived from them (POST
// /load through its admin API: graceful, no dropped connections), so after a crash of Caddy or
// of berth the routes come back from the log. Caddy is supervised like any process: restarted
// with backoff when it dies, adopted (pid + start time) after a berth restart, and left
// running when berth stops, so a berth upgrade does not take sites down.
//   (route_atom, proxy_route)   -> bool once Caddy serves it (error: Caddy did not take it)
//   (unroute_atom, std::string id) -> bool
//   (status_atom)               -> std::string {mode, status, pid, admin_port, http_port, routes, restarts}
#pragma once
#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "config/config.hpp"
#include "messages/proxy.hpp"

namespace berth {

struct proxy_actor_state {
  proxy_settings settings;
  std::string dir;  // <data>/proxy: Caddy's config file, HOME and log
  proxy_record rec;
  std::string status = "starting";  // starting | running | restarting | failed
  std::string reason;
  std::string accept_queue_migration;  // net.ipv4.tcp_migrate_req: on | turned on | off (why)
  uint64_t generation = 0;  // bumps on every launch; stale worker replies are ignored
  std::deque<std::chrono::steady_clock::time_point> restarts;
  bool applying = false;
  std::vector<caf::response_promise> waiting;  // changes not yet sent to Caddy
  std::shared_ptr<std::atomic<bool>> alive = std::make_shared<std::atomic<bool>>(true);
  ~proxy_actor_state() { alive->store(false); }
  static inline const char* name = "proxy";
};

caf::behavior proxy_actor(caf::stateful_actor<proxy_actor_state>* self, proxy_settings settings,
                          std::string data_dir);

}  // namespace berth
