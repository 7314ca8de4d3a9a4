// Caddy (2.6) as berth's reverse proxy: config generation and a small admin API client.
//
// No actor code. Every admin call blocks the calling thread (connect timeout 1 s, read
// timeout 5 s), so callers run them off CAF's scheduler threads. caddy_admin keeps no
// connection between calls and is safe to use from several threads (Caddy serialises
// config changes itself; a read-modify-write such as add_host_route is not atomic
// against another writer, so one owner - the proxy actor - should make the changes).
//
// Layout of the generated config:
//   admin    unix/<admin_socket> only (no TCP port: any local process could reconfigure a
//            TCP admin API, which has no authentication), Host "localhost" allowed,
//            config not persisted (berth regenerates it)
//   logging  default log at WARN; the "http" loggers only at ERROR (this drops the
//            "automatic HTTPS is completely disabled" warning Caddy prints per server on
//            every config change, and keeps proxy errors)
//   server "hosts"          <listen_host>:<http_port> (only when http_port != 0):
//            one route "<id>-host" per proxy_route with a host, then a final route
//            without @id answering 404 "no such site" to any other host
//   server "port-<id>"      <listen_host>:<listen_port> per proxy_route with a listen_port:
//            one route "<id>-port" proxying everything
// Routes whose upstream_port is 0 (nothing serving yet) are left out. Every reverse_proxy
// handler retries failed dials for up to 5 s every 50 ms, so a request racing an upstream
// switch waits for the new upstream instead of failing. Upstream connections are kept alive;
// idle ones are closed after 2 s (before Node-style apps close them at 5 s).
//
// Caddy 2.6 notes (checked against /usr/bin/caddy 2.6.2):
// - every admin change (even PATCH of one upstream list) re-provisions the whole config;
//   every listener (the admin one too) is bound anew with SO_REUSEPORT and the old socket
//   closed: connections waiting in the old socket's accept queue are reset unless
//   net.ipv4.tcp_migrate_req = 1; idle keep-alive client connections are closed; in-flight
//   requests finish on the superseded server, and for a few ms after the admin answer a new
//   connection can still be served by it (old routes): drain before stopping an old upstream.
// - With a unix admin socket Caddy allows only an empty Host header unless "origins" names
//   one: the config allows "localhost" and the client sends it.
// - Caddy opens listeners with SO_REUSEPORT: a listen port clashing with another Caddy
//   listener is NOT reported; check_layout() catches clashes
//   within a layout. A port held by another ordinary process gives "address already in use".
// - PUT on an existing object key fails ("key already exists"), PATCH on a missing one
//   fails ("key does not exist"); POST on an object key creates or replaces (put_server
//   uses it). DELETE of a missing map key answers 200. An unknown /id/ answers 404.
// - GET answers of /config/ and /id/ are chunked with an ETag trailer, which cpp-httplib 0.11
//   cannot parse (it reports a read error after the body); the client copes with it.
// - Duplicate "@id"s are accepted by 2.6; add_host_route replaces in place instead of
//   inserting a second route with the same id.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "messages/proxy.hpp"
#include "runtime/status.hpp"

namespace berth {

// proxy_route (one project environment behind Caddy: id, project, host, listen_port,
// upstream_port) is the persisted message type of messages/proxy.hpp; only id, host,
// listen_port and upstream_port matter here. A route whose upstream_port is 0 (nothing
// serving yet) is left out of the config.

struct proxy_layout {
  std::string listen_host = "127.0.0.1";
  std::string admin_socket;    // absolute path of the admin API's unix socket
  uint16_t http_port = 0;       // the shared host-matched listener; 0 = none
  std::vector<proxy_route> routes;
};

// Names used in the config.
inline constexpr const char* kCaddyHostsServer = "hosts";
std::string caddy_host_route_id(const std::string& id);   // "<id>-host"
std::string caddy_port_route_id(const std::string& id);   // "<id>-port"
std::string caddy_port_server_name(const std::string& id);  // "port-<id>"

// True for a name usable as an @id / server name inside an admin URL path:
// 1-128 chars of [A-Za-z0-9._-].
bool caddy_valid_name(const std::string& s);

// Checks a layout before it is given to Caddy: valid ids (unique), an absolute admin socket
// path that fits a sockaddr_un, no port used twice among http_port and the routes'
// listen_ports (Caddy would silently share it, see above), no host used twice.
// invalid_argument on failure.
status check_layout(const proxy_layout& layout);

// [{"dial":"127.0.0.1:<port>"}]: the body of set_upstream.
nlohmann::json caddy_upstreams_json(uint16_t upstream_port);
// {"handler":"reverse_proxy","load_balancing":{...},"upstreams":[...]}
nlohmann::json reverse_proxy_json(uint16_t upstream_port);
// {"@id":"<id>-host","match":[{"host":["<host>"]}],"handle":[reverse_proxy],"terminal":true}
nlohmann::json host_route_json(const proxy_route& route);
// {"listen":["<listen_host>:<listen_port>"],"automatic_https":{"disable":true},
//  "routes":[{"@id":"<id>-port","handle":[reverse_proxy]}]}
nlohmann::json port_server_json(const proxy_route& route, const std::string& listen_host);
// The "hosts" server: host routes of `layout` (with a host and an upstream), then the 404.
nlohmann::json hosts_server_json(const proxy_layout& layout);
// The whole config (see the top of this file). Does not validate: use check_layout.
nlohmann::json caddy_config(const proxy_layout& layout);
// Pieces every berth Caddy config shares (the TLS front's too, runtime/proxy/tls_front.hpp):
// "<host>:<port>" ("[v6]:<port>" for an IPv6 literal), a listen or dial address;
std::string caddy_endpoint(const std::string& host, uint16_t port);
// the "admin" object: unix/<admin_socket> only, Host "localhost" allowed, not persisted;
nlohmann::json caddy_admin_json(const std::string& admin_socket);
// the "logging" object: default log at WARN, the "http" loggers at ERROR.
nlohmann::json caddy_logging_json();

// Longest admin socket path a sockaddr_un holds (with its terminating NUL).
size_t max_admin_socket_path();
// Where berth keeps Caddy's admin socket: <proxy_dir>/admin/caddy.sock (the folder made 0700).
std::string caddy_admin_socket(const std::string& proxy_dir);

// A typed client of Caddy's admin API on its unix socket (sent with Host: localhost).
// Errors: io_error (unreachable, timeout, HTTP 5xx, unexpected answer), not_found (HTTP 404),
// invalid_argument (a bad name/id given here, or HTTP 400). Messages read
// "caddy <METHOD> <path>: HTTP <code>: <Caddy's error text>"; they never name the socket's
// path (they end up in /health's breaker view): Caddy's text has it replaced by "<admin socket>".
// Caddy 2.6 rebinds its admin listener on every config change, so a request sent right after
// another change can be reset before any answer: such requests are sent again (for up to 3 s,
// 20, 40, ... 100 ms apart: the rebind takes longer on a loaded machine) when the operation is idempotent (every call here except the
// insert of add_host_route, which re-checks by id first, and stop). ping() tries once.
class caddy_admin {
 public:
  explicit caddy_admin(std::string socket_path);

  status ping();                                  // GET /config/ answers 200
  status load(const nlohmann::json& config);      // POST /load (whole config, graceful)
  // PATCH /id/<route_id>/handle/0/upstreams [{"dial":"127.0.0.1:<port>"}]; route_id is the
  // full @id ("shop-production-host"). Unknown id: not_found.
  status set_upstream(const std::string& route_id, uint16_t port);
  // POST /config/apps/http/servers/<name>: creates or replaces the server.
  status put_server(const std::string& name, const nlohmann::json& server);
  // DELETE /config/apps/http/servers/<name>; a missing server is ok.
  status delete_server(const std::string& name);
  // Adds a route (which must carry a string "@id") to the "hosts" server, before its final
  // 404 route (PUT .../hosts/routes/0). If a route with that @id already exists anywhere
  // it is replaced in place (PATCH /id/<id>) instead.
  status add_host_route(const nlohmann::json& route);
  // DELETE /id/<id>; an unknown id is ok.
  status delete_id(const std::string& id);
  status config(nlohmann::json* out);             // GET /config/
  status stop();                                  // POST /stop (Caddy exits)

  const std::string& socket_path() const { return socket_; }

 private:
  // *http_status = 0 when no answer came back.
  status call(const char* method, const std::string& path, const std::string* body,
              std::string* response, int* http_status);
  status call_once(const char* method, const std::string& path, const std::string* body,
                   std::string* response, int* http_status);

  std::string socket_;
};

// Polls caddy_admin(socket_path).ping() every 20 ms until it answers or `timeout` passes
// (at least one attempt). io_error with the last failure on timeout.
status wait_admin_ready(const std::string& socket_path, std::chrono::milliseconds timeout);

}  // namespace berth
