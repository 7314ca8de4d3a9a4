// HAProxy (2.6, master-worker) as berth's router: a config with nothing per project but the
// stable ports' bind lines, maps that carry every route and canary split, and a client of its
// runtime API.
//
// No actor code. Every call blocks the calling thread (connect 1 s, answer 5 s); run them off
// CAF's scheduler threads. One owner (the proxy actor) should make the changes.
//
// Why this shape (README "The proxy"): a route flip (deploy, rollback, stop, preview) is a
// `set map` on the runtime API of every live worker - no reload, so no other connection is
// touched. Only a change of the stable ports' listeners (a project's first route, or its
// removal) rewrites the config and reloads through the master socket: the new worker takes the
// listening sockets over (expose-fd listeners, nothing refused), the old worker keeps every
// established connection until it ends (`idle-close-on-response`: an idle kept-alive connection
// is answered once more, with "Connection: close", instead of being closed under a client that
// may be sending), and map updates go to the old workers too, so they never send a request to a
// release that has stopped.
//
// Files in layout.dir (the maps and config written atomically, by rename):
//   haproxy.cfg      the config (haproxy_config)
//   ports.map        "<listen_port> <upstream_port>" per route with both
//   hosts.map        "<host> <upstream_port>" per host of a route with an upstream (the route's
//                    host and its custom domains), lowercase
//   canary.map       "<upstream_port> <candidate_port>:<percent>:<sticky 0|1>" per route with a
//                    traffic split (split_value); memory only in berth, so a restarted berth's
//                    first full table removes every split
//   admin.sock       the worker's runtime API (level admin, expose-fd listeners), mode 0600
//   master.sock      the master CLI (reload, show proc), mode 0600
//   traffic.sock     bound by berth's traffic meter (traffic_meter.hpp), never by HAProxy: the
//                    workers send their request log lines there
// layout.dir must be a folder only berth's user can enter (0700): the sockets have no password.
//
// Traffic: one frontend "sites" binds <listen_host>:<http_port> (when != 0) and every route's
// listen_port on 127.0.0.1 (also a route with no upstream yet). A request to a stable port goes
// to ports.map[dst_port] (never by Host), with none → 503 JSON
// {"error":{"code":"unavailable",...}}; a request to http_port goes to hosts.map[Host without
// port, lowercase], with none → 404 JSON {"error":{"code":"not_found","message":"no such site"}}.
// One backend with `server s 0.0.0.0:0` sends the request to 127.0.0.1:<upstream> (set-dst);
// failed connects are retried (conn-failure only: a POST is never sent twice); HAProxy's own
// 502/503/504 are JSON errors too. Upstream connections are private to the client connection
// that opened them (http-reuse never; see haproxy.cpp for the measurement). WebSockets are
// tunnelled (timeout tunnel 1 h); client/server inactivity timeouts are 1 h (streamed answers,
// long requests), idle kept-alive clients 75 s. No hard-stop-after: an old worker lives until
// its last connection (an open WebSocket) ends.
//
// Canary split: when canary.map has the upstream a request was routed to (by port, Host or
// custom domain alike), each request rolls rand(100) and goes to the candidate port when the
// roll is below the percent, else to the upstream. Sticky splits pin a client with the cookie
// berth_canary=<candidate|stable>-<candidate_port> (Path=/; HttpOnly; SameSite=Lax; no expiry),
// set on the first answer: a request carrying the cookie of the running split skips the roll,
// one of an earlier canary (another candidate port) rolls again and gets a new cookie. A
// split change is a map change like a route flip: no reload. Every answer of a split route
// (except a 101) says "Connection: close": HAProxy neither answers nor logs a reset by the app
// on a kept-alive connection's later request (it closes silently for the client to retry), so
// each split request comes on a connection of its own, where a reset is a logged 502. The
// price, during a canary only: a connection per request to HAProxy and to the app (the TLS
// front keeps its clients' connections).
//
// Request log (for canaries only): every request routed to an upstream that has a split (to
// either side) is logged by the worker, one datagram per request, `format raw`, to
// <dir>/traffic.sock as "<upstream_port> <status> <Tr> <Ta> <termination_state>" (the port
// after the split: the side it was sent to; see traffic_meter.hpp). Every other request is
// `set-log-level silent`, so routes without a canary cost nothing. HAProxy sends each datagram
// with sendmsg() to the path from an unconnected socket (checked with strace on 2.6.12), so it
// starts without the socket (lines sent meanwhile are dropped, with one ALERT in its log) and
// an adopted HAProxy reaches the socket a restarted berth binds at the same path. The send
// never blocks (MSG_DONTWAIT): a line finding the meter's queue full
// (net.unix.max_dgram_qlen datagrams) is dropped and counted in `show info` DroppedLogs.
// What 2.6.12 logs (the tests check the meter's reading): an app's 500 "500 2 2 --"; a reset
// before any answer "502 -1 13 SH" (after the GET retries); a refused connect "503 -1 3004 SC"
// (after 3 retries, 1 s apart); a client that aborted a POST mid-body "-1 -1 300 CD" (not the
// app's error: the meter skips it); a client that left while the app worked still gets the
// app's line ("200 3001 3001 CD" or "--": no abortonclose). A request still in the app is
// logged only when it ends.
//
// Order for a change (the proxy actor): write_router_files, then reload only when the config
// text changed (listen_ports_of changed: a split never changes it), then sync_maps on every live
// worker - a new worker reads the maps from the files.
// When ask_port != 0 a second frontend on 127.0.0.1:<ask_port> answers GET /ask?domain=D with
// 200 when D is in hosts.map, else 404: Caddy's on-demand TLS asks it which names may get a
// certificate, so the answer follows the routes without berth in the loop.
#pragma once
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "messages/proxy.hpp"
#include "runtime/status.hpp"

namespace berth {

struct router_layout {
  std::string dir;                       // absolute; see above
  std::string listen_host = "127.0.0.1";  // of the shared host listener (stable ports: always loopback)
  uint16_t http_port = 0;                // shared host-matched listener; 0 = none
  uint16_t ask_port = 0;                 // on-demand TLS ask frontend; 0 = none
  std::vector<proxy_route> routes;
};

using route_map = std::map<std::string, uint16_t>;  // key → upstream port
using split_map = std::map<std::string, std::string>;  // upstream port → split_value
// Every map of a running router: what sync_maps makes each worker hold.
struct router_maps {
  route_map ports, hosts;
  split_map canaries;
};

// The maps a layout implies (routes with upstream_port 0 are left out of all; a split with
// port 0 or percent 0 is no split).
route_map ports_map_of(const router_layout& l);
route_map hosts_map_of(const router_layout& l);
split_map canary_map_of(const router_layout& l);
router_maps maps_of(const router_layout& l);
// "<port>:<percent>:<1|0>", e.g. "41008:20:1" (the value of canary.map).
std::string split_value(const traffic_split& s);
// The listen ports a layout binds (http_port, ask_port, every route's listen_port), sorted.
std::vector<uint16_t> listen_ports_of(const router_layout& l);

// The config text. Does not validate: use check_router_layout.
std::string haproxy_config(const router_layout& l);
// Valid ids, hosts and domains (lowercase DNS names), no port bound twice, an absolute dir
// whose socket paths fit a sockaddr_un, splits of at most 100 % to a port that is not the
// route's upstream, one split per upstream port. invalid_argument on failure.
status check_router_layout(const router_layout& l);
// Writes haproxy.cfg, ports.map, hosts.map and canary.map (each by rename). io_error on failure.
status write_router_files(const router_layout& l);
// How to run it: {binary, "-W", "-S", "<dir>/master.sock,mode,600", "-f", "<dir>/haproxy.cfg"}
// (in the foreground: the master is the process berth keeps; workers die with it).
std::vector<std::string> haproxy_command(const std::string& binary, const std::string& dir);

// A client of the runtime API. Errors: io_error (unreachable, timeout, an answer that is not
// what the command should print), invalid_argument (a key or value HAProxy would misread).
// Safe from several threads; each call opens its own connections (one command per
// connection, except map updates: up to 200 lines per connection, one per line).
class haproxy_admin {
 public:
  explicit haproxy_admin(std::string dir);

  // Answers when the master and at least one worker run (show proc).
  status ping();
  // The pids of the live workers, current first, then old (soft-stopping) ones (show proc on
  // the master socket).
  status workers(std::vector<int>* pids);
  // Makes every live worker's maps equal to `maps` (set/add/del map through the master CLI,
  // "@!<pid> ..."), reading each worker's maps first (show map). Does not touch the files. A
  // worker that exits meanwhile is skipped, and so is the canary map of an old worker started
  // from a config before canaries (it serves every route whole until it ends).
  status sync_maps(const router_maps& maps);
  // Reloads (master CLI `reload`) and waits until a new worker runs and answers `show map`,
  // at most `timeout`. io_error when the reload failed (the old worker keeps serving), seen
  // within ~20 ms of the master's attempt (its reload count grew, [failed: N] grew, no new pid).
  status reload(std::chrono::milliseconds timeout);

 private:
  std::string dir_;
};

// Polls ping() every 20 ms until it answers or `timeout` passes. io_error with the last
// failure on timeout.
status wait_router_ready(const std::string& dir, std::chrono::milliseconds timeout);

}  // namespace berth
