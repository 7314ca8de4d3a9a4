// The config, maps and checks of a router layout (haproxy.hpp); the runtime API client is in
// haproxy_admin.cpp.
#include "runtime/proxy/haproxy.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <set>
#include <sstream>

#include <sys/un.h>

#include "runtime/files/fs_util.hpp"
#include "runtime/proxy/haproxy_files.hpp"

namespace berth {

namespace {

const char* const kNotFoundJson = R"({"error":{"code":"not_found","message":"no such site"}})";
const char* const kUnavailableJson =
    R"({"error":{"code":"unavailable","message":"nothing serves this site yet"}})";

using haproxy_files::lower;
std::string ports_map_path(const std::string& dir) { return haproxy_files::ports_map(dir); }
std::string hosts_map_path(const std::string& dir) { return haproxy_files::hosts_map(dir); }
std::string canary_map_path(const std::string& dir) { return haproxy_files::canary_map(dir); }
std::string master_socket(const std::string& dir) { return haproxy_files::master_socket(dir); }
std::string admin_socket(const std::string& dir) { return haproxy_files::admin_socket(dir); }

// A lowercase DNS name: labels of [a-z0-9-], 1-63 chars, not starting or ending with '-'.
bool valid_dns_name(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  size_t start = 0;
  while (true) {
    size_t end = s.find('.', start);
    std::string label = s.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (unsigned char c : label)
      if (!(std::islower(c) || std::isdigit(c) || c == '-')) return false;
    if (end == std::string::npos) return true;
    start = end + 1;
  }
}

bool valid_id(const std::string& s) {
  if (s.empty() || s.size() > 128) return false;
  return std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '_' || c == '.';
  });
}

// Paths go into the config unquoted: no spaces, quotes, '#' or other characters HAProxy parses.
bool safe_path(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '/' || c == '-' || c == '_' || c == '.' || c == '+' || c == '@';
  });
}

std::string value_text(uint16_t port) { return std::to_string(port); }
const std::string& value_text(const std::string& s) { return s; }

template <class Map>
std::string map_text(const Map& m) {
  std::string out;
  for (const auto& [k, v] : m) out += k + " " + value_text(v) + "\n";
  return out;
}

bool splits(const proxy_route& r) { return r.upstream_port != 0 && r.split.port != 0 && r.split.percent != 0; }


}  // namespace

// ---- layout --------------------------------------------------------------------------------

route_map ports_map_of(const router_layout& l) {
  route_map m;
  for (const auto& r : l.routes)
    if (r.listen_port != 0 && r.upstream_port != 0) m[std::to_string(r.listen_port)] = r.upstream_port;
  return m;
}

route_map hosts_map_of(const router_layout& l) {
  route_map m;
  for (const auto& r : l.routes) {
    if (r.upstream_port == 0) continue;
    if (!r.host.empty()) m[lower(r.host)] = r.upstream_port;
    for (const auto& d : r.domains) m[lower(d)] = r.upstream_port;
  }
  return m;
}

split_map canary_map_of(const router_layout& l) {
  split_map m;
  for (const auto& r : l.routes)
    if (splits(r)) m[std::to_string(r.upstream_port)] = split_value(r.split);
  return m;
}

router_maps maps_of(const router_layout& l) { return {ports_map_of(l), hosts_map_of(l), canary_map_of(l)}; }

std::string split_value(const traffic_split& s) {
  return std::to_string(s.port) + ":" + std::to_string(int(s.percent)) + ":" + (s.sticky ? "1" : "0");
}

std::vector<uint16_t> listen_ports_of(const router_layout& l) {
  std::set<uint16_t> ports;
  if (l.http_port != 0) ports.insert(l.http_port);
  if (l.ask_port != 0) ports.insert(l.ask_port);
  for (const auto& r : l.routes)
    if (r.listen_port != 0) ports.insert(r.listen_port);
  return {ports.begin(), ports.end()};
}

std::string haproxy_config(const router_layout& l) {
  const std::string ports_map = ports_map_path(l.dir), hosts_map = hosts_map_path(l.dir),
                    canary_map = canary_map_path(l.dir);
  std::set<uint16_t> stable;
  for (const auto& r : l.routes)
    if (r.listen_port != 0) stable.insert(r.listen_port);
  std::ostringstream c;
  c << "# Written by berth (runtime/proxy/haproxy.cpp); routes live in ports.map and hosts.map, canary "
       "splits in canary.map.\n"
       "global\n"
       // No `quiet`: it would hide the ALERT lines that say why a reload was refused.
       "    master-worker\n"
       // The runtime API; expose-fd lets a reloaded worker take the listening sockets over.
       "    stats socket " << admin_socket(l.dir) << " mode 600 level admin expose-fd listeners\n"
       "    stats timeout 10s\n"
       "    log stderr format raw local0 err\n"
       "\n"
       "defaults\n"
       "    mode http\n"
       "    log global\n"
       // A soft-stopping (old) worker answers an idle kept-alive client once more, with
       // "Connection: close", instead of closing under a client that may be sending.
       "    option idle-close-on-response\n"
       "    option forwardfor\n"
       // Streamed answers (SSE, chunked progress) pass at once: without it HAProxy holds small
       // writes back (a stream's first byte came after ~200 ms, chunks 100 ms apart in bursts).
       "    option http-no-delay\n"
       // Upstream connections stay private to the client connection that opened them and are
       // reused by its next requests to the same upstream; never one to another upstream after
       // a map flip (test_haproxy_admin.cpp). Nothing is shared between clients: with "always"
       // (a pool for all clients, as Caddy has) a kept-alive POST over the TLS front was lost
       // in one of two test runs, sent on a pooled connection the app had closed. The price: a
       // new client connection is a new connection to the app, as without a proxy, so an app
       // with a tiny accept queue (Python http.server's 5) overflows sooner than behind Caddy.
       "    http-reuse never\n"
       // Failed connects are retried for every request. A request that reached an app is
       // retried only when nothing came back at all (a kept-alive connection the app closed as
       // it was reused) and only for GET/HEAD/OPTIONS (backend "upstream"): a POST is never
       // sent twice.
       "    retries 3\n"
       "    retry-on conn-failure empty-response\n"
       "    timeout connect 2s\n"
       // Header within 30 s (slow clients), idle kept-alive connections closed after 75 s.
       "    timeout http-request 30s\n"
       "    timeout http-keep-alive 75s\n"
       // Slow uploads, long requests and streamed answers (SSE) are not cut short; WebSockets
       // and other upgraded connections stay open while used, idle up to an hour.
       "    timeout client 1h\n"
       "    timeout server 1h\n"
       "    timeout tunnel 1h\n"
       "    timeout client-fin 30s\n"
       "    timeout server-fin 30s\n"
       "    http-error status 502 content-type application/json string "
       "'{\"error\":{\"code\":\"bad_gateway\",\"message\":\"the site answered badly\"}}'\n"
       // 503: the upstream refused every connect (retries included).
       "    http-error status 503 content-type application/json string "
       "'{\"error\":{\"code\":\"unavailable\",\"message\":\"the site is not answering\"}}'\n"
       "    http-error status 504 content-type application/json string "
       "'{\"error\":{\"code\":\"gateway_timeout\",\"message\":\"the site did not answer in time\"}}'\n";

  if (l.http_port != 0 || !stable.empty()) {
    c << "\nfrontend sites\n";
    if (l.http_port != 0) c << "    bind " << l.listen_host << ":" << l.http_port << "\n";
    for (auto p : stable) c << "    bind 127.0.0.1:" << p << "\n";
    // The request log feeds berth's traffic meter (traffic_meter.hpp parses this exact line)
    // and holds only requests of routes with a split: every other one is set silent below.
    c << "    no log\n"
         "    log " << haproxy_files::traffic_socket(l.dir) << " format raw local0 info\n"
         "    log-format \"%[var(txn.up)] %ST %Tr %Ta %ts\"\n"
         "    option dontlognull\n"
         "    acl split var(txn.split) -m found\n"
         "    acl sticky var(txn.sticky) -m str 1\n";
    // A stable port is routed by ports.map only (never by Host); the shared listener by Host.
    std::string on_http = l.http_port != 0 ? "{ dst_port " + std::to_string(l.http_port) + " }" : "FALSE";
    c << "    http-request set-var(txn.up) dst_port,map(" << ports_map << ") unless " << on_http << "\n";
    if (l.http_port != 0)
      c << "    http-request set-var(txn.up) req.hdr(host),field(1,:),lower,map(" << hosts_map << ") if "
        << on_http << "\n";
    c << "    http-request set-var(txn.split) var(txn.up),map(" << canary_map << ") if { var(txn.up) -m found }\n"
         "    http-request set-log-level silent unless split\n";
    if (l.http_port != 0)
      c << "    http-request return status 404 content-type application/json string '" << kNotFoundJson
        << "' if !{ var(txn.up) -m found } " << on_http << "\n";
    c << "    http-request return status 503 content-type application/json string '" << kUnavailableJson
      << "' if !{ var(txn.up) -m found }\n";
    // The split ("<port>:<percent>:<sticky>"): a sticky client whose cookie names this split's
    // candidate port keeps its side; any other request goes to the candidate when rand(100) is
    // below the percent. txn.up becomes the chosen side's port, so the log line names it.
    c << "    http-request set-var(txn.candidate) var(txn.split),field(1,:) if split\n"
         "    http-request set-var(txn.percent) var(txn.split),field(2,:) if split\n"
         "    http-request set-var(txn.sticky) var(txn.split),field(3,:) if split\n"
         "    http-request set-var(txn.candidate_cookie) str(candidate-),concat(,txn.candidate,) if sticky\n"
         "    http-request set-var(txn.stable_cookie) str(stable-),concat(,txn.candidate,) if sticky\n"
         "    http-request set-var(txn.side) str(candidate) if sticky "
         "{ req.cook(berth_canary),strcmp(txn.candidate_cookie) eq 0 }\n"
         "    http-request set-var(txn.side) str(stable) if sticky "
         "{ req.cook(berth_canary),strcmp(txn.stable_cookie) eq 0 }\n"
         "    http-request set-var(txn.pinned) bool(1) if { var(txn.side) -m found }\n"
         "    http-request set-var(txn.side) str(candidate) if split !{ var(txn.side) -m found } "
         "{ rand(100),sub(txn.percent) lt 0 }\n"
         "    http-request set-var(txn.side) str(stable) if split !{ var(txn.side) -m found }\n"
         "    http-request set-var(txn.up) var(txn.candidate) if { var(txn.side) -m str candidate }\n"
         // The first answer pins a sticky client (a session cookie: no expiry).
         "    http-response add-header Set-Cookie \"berth_canary=%[var(txn.side)]-%[var(txn.candidate)]; Path=/; "
         "HttpOnly; SameSite=Lax\" if sticky !{ var(txn.pinned) -m found }\n"
         // Each split request gets a client connection of its own. HAProxy 2.6 closes a kept-alive
         // connection silently, and logs nothing, when the app resets or closes on a request that
         // is not the connection's first (abort_keep_alive: the client is to retry), so the meter
         // would never see those errors; a connection's first request is answered 502 and logged.
         // http-after-response: HAProxy's own 502/503 too. Not on a 101: that is a tunnel now.
         "    http-after-response set-header Connection close if split !{ status 101 }\n"
         "    default_backend upstream\n";
  }

  if (l.ask_port != 0)
    c << "\nfrontend ask\n"
         "    bind 127.0.0.1:" << l.ask_port << "\n"
         "    http-request return status 200 content-type text/plain string \"ok\" if { path /ask } "
         "{ url_param(domain),lower,map(" << hosts_map << ") -m found }\n"
         "    http-request return status 404 content-type text/plain string \"no such site\"\n";

  c << "\nbackend upstream\n"
       // Every map is always loaded (even with no frontend using it), so `set map` finds it.
       "    http-request set-var(txn.unused) dst_port,map(" << ports_map << ") if FALSE\n"
       "    http-request set-var(txn.unused) req.hdr(host),map(" << hosts_map << ") if FALSE\n"
       "    http-request set-var(txn.unused) dst_port,map(" << canary_map << ") if FALSE\n"
       "    http-request disable-l7-retry unless METH_GET or METH_HEAD or METH_OPTIONS\n"
       "    http-request set-dst-port var(txn.up)\n"
       "    http-request set-dst ipv4(127.0.0.1)\n"
       "    server s 0.0.0.0:0\n";
  return c.str();
}

status check_router_layout(const router_layout& l) {
  auto bad = [](const std::string& m) { return status::invalid_argument("haproxy layout: " + m); };
  if (l.dir.empty() || l.dir.front() != '/') return bad("the dir needs an absolute path");
  if (!safe_path(l.dir)) return bad("the dir '" + l.dir + "' has characters HAProxy's config cannot hold");
  size_t max_socket = sizeof(sockaddr_un{}.sun_path) - 1;
  if (master_socket(l.dir).size() > max_socket || admin_socket(l.dir).size() > max_socket ||
      haproxy_files::traffic_socket(l.dir).size() > max_socket)
    return bad("the dir's socket paths are longer than " + std::to_string(max_socket) +
               " bytes (use a shorter --data path)");
  if (l.listen_host.empty() || !std::all_of(l.listen_host.begin(), l.listen_host.end(), [](unsigned char c) {
        return std::isalnum(c) || c == '.' || c == ':' || c == '-';
      }))
    return bad("invalid listen_host '" + l.listen_host + "'");
  std::set<uint16_t> ports;
  auto claim = [&](uint16_t p, const std::string& what) {
    if (p == 0 || ports.insert(p).second) return status::ok();
    return bad("port " + std::to_string(p) + " (" + what + ") is bound twice");
  };
  if (auto st = claim(l.http_port, "http_port"); !st) return st;
  if (auto st = claim(l.ask_port, "ask_port"); !st) return st;
  std::set<std::string> ids, names;
  std::map<uint16_t, traffic_split> split_of_upstream;
  for (const auto& r : l.routes) {
    if (!valid_id(r.id)) return bad("invalid route id '" + r.id + "'");
    if (r.split.port != 0 && r.split.percent > 100)
      return bad("route " + r.id + " splits " + std::to_string(int(r.split.percent)) + " % (at most 100)");
    if (r.split.port != 0 && r.split.port == r.upstream_port)
      return bad("route " + r.id + " splits to its own upstream port " + std::to_string(r.upstream_port));
    if (splits(r)) {
      auto [at, fresh] = split_of_upstream.emplace(r.upstream_port, r.split);
      if (!fresh && at->second != r.split)
        return bad("upstream port " + std::to_string(r.upstream_port) + " has two different splits");
    }
    if (!ids.insert(r.id).second) return bad("route id '" + r.id + "' used twice");
    if (auto st = claim(r.listen_port, "route " + r.id); !st) return st;
    std::vector<std::string> all = r.domains;
    if (!r.host.empty()) all.insert(all.begin(), r.host);
    for (const auto& name : all) {
      if (!valid_dns_name(name)) return bad("invalid host or domain '" + name + "' of route " + r.id);
      if (!names.insert(name).second) return bad("host or domain '" + name + "' used twice");
    }
  }
  return status::ok();
}

status write_router_files(const router_layout& l) {
  // Maps first: a reload triggered by someone else between the writes then loads a config that
  // references maps which exist.
  auto write = [](const std::string& path, const std::string& text) {
    auto st = fsutil::write_atomically(path, text);
    return st ? st : status::io_error("haproxy: " + st.message());
  };
  if (auto st = write(ports_map_path(l.dir), map_text(ports_map_of(l))); !st) return st;
  if (auto st = write(hosts_map_path(l.dir), map_text(hosts_map_of(l))); !st) return st;
  if (auto st = write(canary_map_path(l.dir), map_text(canary_map_of(l))); !st) return st;
  return write(haproxy_files::config(l.dir), haproxy_config(l));
}

std::vector<std::string> haproxy_command(const std::string& binary, const std::string& dir) {
  return {binary, "-W", "-S", master_socket(dir) + ",mode,600", "-f", haproxy_files::config(dir)};
}

}  // namespace berth
