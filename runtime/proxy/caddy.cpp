#include "runtime/proxy/caddy.hpp"

#include <algorithm>
#include <cctype>
#include <set>
#include <thread>

#include <sys/socket.h>
#include <sys/un.h>

#include <httplib.h>

namespace berth {

using json = nlohmann::json;
using std::chrono::milliseconds;

namespace {

constexpr std::chrono::seconds kConnectTimeout{1};
constexpr std::chrono::seconds kReadTimeout{5};
constexpr std::chrono::seconds kWriteTimeout{5};
constexpr size_t kMaxErrorText = 512;
constexpr int kAttempts = 4;
constexpr milliseconds kRetryPause{20};
constexpr milliseconds kRetryPauseMax{100};
constexpr milliseconds kRetryWindow{3000};  // Caddy re-provisioning its config on a loaded machine
constexpr milliseconds kRetryIfFasterThan{1000};
constexpr size_t kMaxResponse = 256u << 20;  // a whole config of many projects
constexpr const char* kServersPath = "/config/apps/http/servers/";

// Retries a failed dial (the upstream is being switched, or not listening yet) for up to
// try_duration; Caddy only retries requests that could not be sent, so this is safe for
// any method.
json load_balancing_json() { return {{"try_duration", "5s"}, {"try_interval", "50ms"}}; }

// Keep-alive to the upstream, but idle connections are dropped after 2 s (Caddy's default is
// 2 min), before common app servers drop them (Node: 5 s): Caddy then never sends a request
// on a connection the app is closing at that moment (that race answers 502 for requests Go
// cannot replay).
json transport_json() {
  return {{"protocol", "http"}, {"keep_alive", {{"idle_timeout", "2s"}}}};
}

std::string endpoint(const std::string& host, uint16_t port) {
  // An IPv6 literal needs brackets in a Caddy listen/dial address.
  if (host.find(':') != std::string::npos && host.front() != '[')
    return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

std::string trim(std::string s) {
  auto not_space = [](unsigned char c) { return !std::isspace(c); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  return s;
}

// Caddy answers errors as {"error":"..."}; anything else is reported trimmed and capped.
// The admin socket's path never appears in it (it would reach /health).
std::string error_text(const std::string& body, const std::string& socket) {
  auto j = json::parse(body, nullptr, false);
  std::string text;
  if (j.is_object() && j.contains("error") && j["error"].is_string())
    text = j["error"].get<std::string>();
  else
    text = body;
  text = trim(std::move(text));
  for (auto at = text.find(socket); !socket.empty() && at != std::string::npos; at = text.find(socket, at))
    text.replace(at, socket.size(), "<admin socket>");
  if (text.size() > kMaxErrorText) text = text.substr(0, kMaxErrorText) + "...";
  return text.empty() ? "(empty body)" : text;
}

std::string describe(httplib::Error e) {
  switch (e) {
    case httplib::Error::Connection: return "cannot connect";
    case httplib::Error::ConnectionTimeout: return "connect timeout";
    case httplib::Error::Read: return "read error or timeout";
    case httplib::Error::Write: return "write error";
    default: return "error " + httplib::to_string(e);
  }
}

status bad_name(const char* what, const std::string& name) {
  return status::invalid_argument(std::string("caddy: invalid ") + what + " '" + name + "'");
}

}  // namespace

std::string caddy_host_route_id(const std::string& id) { return id + "-host"; }
std::string caddy_port_route_id(const std::string& id) { return id + "-port"; }
std::string caddy_port_server_name(const std::string& id) { return "port-" + id; }

bool caddy_valid_name(const std::string& s) {
  if (s.empty() || s.size() > 128) return false;
  return std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '_' || c == '.';
  });
}

size_t max_admin_socket_path() { return sizeof(sockaddr_un{}.sun_path) - 1; }

std::string caddy_admin_socket(const std::string& proxy_dir) { return proxy_dir + "/admin/caddy.sock"; }

status check_layout(const proxy_layout& layout) {
  if (layout.admin_socket.empty() || layout.admin_socket.front() != '/')
    return status::invalid_argument("caddy layout: the admin socket needs an absolute path");
  if (layout.admin_socket.size() > max_admin_socket_path())
    return status::invalid_argument("caddy layout: the admin socket's path is longer than " +
                                    std::to_string(max_admin_socket_path()) + " bytes (use a shorter --data path)");
  if (layout.listen_host.empty()) return status::invalid_argument("caddy layout: empty listen_host");
  std::set<uint16_t> ports;
  if (layout.http_port != 0) ports.insert(layout.http_port);
  std::set<std::string> ids, hosts;
  for (const auto& r : layout.routes) {
    // "port-<id>" must stay a valid server name as well.
    if (!caddy_valid_name(r.id) || r.id.size() > 100)
      return status::invalid_argument("caddy layout: invalid route id '" + r.id + "'");
    if (!ids.insert(r.id).second)
      return status::invalid_argument("caddy layout: route id '" + r.id + "' used twice");
    if (r.upstream_port == 0) continue;  // not in the config
    if (r.listen_port != 0 && !ports.insert(r.listen_port).second)
      return status::invalid_argument("caddy layout: port " + std::to_string(r.listen_port) +
                                      " of route '" + r.id + "' is used twice");
    if (!r.host.empty()) {
      if (r.host.find_first_of(" \t\r\n/") != std::string::npos)
        return status::invalid_argument("caddy layout: invalid host '" + r.host + "'");
      if (!hosts.insert(r.host).second)
        return status::invalid_argument("caddy layout: host '" + r.host + "' used twice");
    }
  }
  return status::ok();
}

json caddy_upstreams_json(uint16_t upstream_port) {
  return json::array({{{"dial", endpoint("127.0.0.1", upstream_port)}}});
}

json reverse_proxy_json(uint16_t upstream_port) {
  return {{"handler", "reverse_proxy"},
          {"load_balancing", load_balancing_json()},
          {"transport", transport_json()},
          {"upstreams", caddy_upstreams_json(upstream_port)}};
}

json host_route_json(const proxy_route& route) {
  auto hosts = json::array({route.host});
  for (auto& d : route.domains) hosts.push_back(d);  // custom domains answer like the host
  return {{"@id", caddy_host_route_id(route.id)},
          {"match", json::array({{{"host", hosts}}})},
          {"handle", json::array({reverse_proxy_json(route.upstream_port)})},
          {"terminal", true}};
}

json port_server_json(const proxy_route& route, const std::string& listen_host) {
  json r = {{"@id", caddy_port_route_id(route.id)},
            {"handle", json::array({reverse_proxy_json(route.upstream_port)})}};
  return {{"listen", json::array({endpoint(listen_host, route.listen_port)})},
          {"automatic_https", {{"disable", true}}},
          {"routes", json::array({std::move(r)})}};
}

json hosts_server_json(const proxy_layout& layout) {
  json routes = json::array();
  for (const auto& r : layout.routes)
    if (!r.host.empty() && r.upstream_port != 0) routes.push_back(host_route_json(r));
  // Last: any other host. No @id, so nothing can address (or delete) it by id.
  routes.push_back({{"handle", json::array({{{"handler", "static_response"},
                                             {"status_code", 404},
                                             {"body", "no such site\n"}}})},
                    {"terminal", true}});
  return {{"listen", json::array({endpoint(layout.listen_host, layout.http_port)})},
          {"automatic_https", {{"disable", true}}},
          {"routes", std::move(routes)}};
}

json caddy_config(const proxy_layout& layout) {
  json servers = json::object();
  if (layout.http_port != 0) servers[kCaddyHostsServer] = hosts_server_json(layout);
  for (const auto& r : layout.routes)
    if (r.listen_port != 0 && r.upstream_port != 0)
      servers[caddy_port_server_name(r.id)] = port_server_json(r, layout.listen_host);
  return {{"admin", caddy_admin_json(layout.admin_socket)},
          {"logging", caddy_logging_json()},
          {"apps", {{"http", {{"servers", std::move(servers)}}}}}};
}

std::string caddy_endpoint(const std::string& host, uint16_t port) { return endpoint(host, port); }

json caddy_admin_json(const std::string& admin_socket) {
  return {{"listen", "unix/" + admin_socket},
          {"origins", json::array({"localhost"})},
          {"config", {{"persist", false}}}};
}

json caddy_logging_json() {
  return {{"logs",
           {{"default", {{"level", "WARN"}, {"exclude", json::array({"http"})}}},
            {"http", {{"level", "ERROR"}, {"include", json::array({"http"})}}}}}};
}

// ---- admin client ---------------------------------------------------------------------------

caddy_admin::caddy_admin(std::string socket_path) : socket_(std::move(socket_path)) {}

status caddy_admin::call(const char* method, const std::string& path, const std::string* body,
                         std::string* response, int* http_status) {
  // Caddy 2.6 replaces its admin server (a new SO_REUSEPORT socket, the old one closed) on
  // every config change: a request arriving just then can be reset before any answer. Such a
  // request never reached a handler, so it is sent again - only when no answer at all came
  // back quickly (not after a read timeout), and never for PUT (an array insert) or /stop.
  const bool retry = std::string(method) != "PUT" && path != "/stop";
  using steady = std::chrono::steady_clock;
  // How long that lasts depends on the machine's load (more than the 120 ms of four quick
  // attempts under ctest -j2), so the attempts go on for a window, not a count.
  int code = 0;
  status s;
  auto start = steady::now();
  for (int attempt = 0;; ++attempt) {
    auto t0 = steady::now();
    s = call_once(method, path, body, response, &code);
    if (s || code != 0 || !retry || steady::now() - start > kRetryWindow || steady::now() - t0 > kRetryIfFasterThan)
      break;
    std::this_thread::sleep_for(std::min(kRetryPause * (attempt + 1), kRetryPauseMax));
  }
  if (http_status) *http_status = code;
  return s;
}

status caddy_admin::call_once(const char* method, const std::string& path, const std::string* body,
                              std::string* response, int* http_status) {
  httplib::Client cli(socket_);
  cli.set_address_family(AF_UNIX);
  cli.set_connection_timeout(kConnectTimeout);
  cli.set_read_timeout(kReadTimeout);
  cli.set_write_timeout(kWriteTimeout);
  cli.set_keep_alive(false);
  cli.set_follow_location(false);

  const std::string m = method;
  const std::string empty;
  const std::string& b = body ? *body : empty;
  const char* ctype = "application/json";
  const std::string what = "caddy " + m + " " + path;
  const httplib::Headers host{{"Host", "localhost"}};  // the origin the config allows
  if (http_status) *http_status = 0;

  // GET answers of Caddy's config API are chunked and end with an ETag *trailer*, which
  // cpp-httplib 0.11 cannot parse: it reports a read error after having delivered the whole
  // body. So GET reads status and body through callbacks and accepts that one failure when
  // the response announced a trailer (callers that need the body parse it, so a truncated
  // one cannot pass for a good one).
  int code = 0;
  bool announced_trailer = false;
  std::string got;
  bool too_big = false;
  httplib::Result res{nullptr, httplib::Error::Unknown};
  if (m == "GET") {
    res = cli.Get(
        path, host,
        [&](const httplib::Response& r) {
          code = r.status;
          announced_trailer = r.has_header("Trailer");
          return true;
        },
        [&](const char* data, size_t n) {
          if (got.size() + n > kMaxResponse) return !(too_big = true);
          got.append(data, n);
          return true;
        });
    if (res) {
      code = res->status;
    } else if (!(res.error() == httplib::Error::Read && code != 0 && announced_trailer && !too_big)) {
      code = 0;
    }
  } else {
    if (m == "POST")
      res = cli.Post(path, host, b, ctype);
    else if (m == "PUT")
      res = cli.Put(path, host, b, ctype);
    else if (m == "PATCH")
      res = cli.Patch(path, host, b, ctype);
    else if (m == "DELETE")
      res = cli.Delete(path, host);
    else
      return status::invalid_argument("caddy: unsupported method " + m);
    if (res) {
      code = res->status;
      got = std::move(res->body);
    }
  }

  if (code == 0) {
    std::string why = too_big ? "answer larger than " + std::to_string(kMaxResponse) + " bytes"
                              : describe(res.error());
    return status::io_error(what + ": " + why);
  }
  if (http_status) *http_status = code;
  if (code >= 200 && code < 300) {
    if (response) *response = std::move(got);
    return status::ok();
  }
  std::string msg = what + ": HTTP " + std::to_string(code) + ": " + error_text(got, socket_);
  if (code == 404) return status::not_found(std::move(msg));
  if (code == 400) return status::invalid_argument(std::move(msg));
  return status::io_error(std::move(msg));
}

status caddy_admin::ping() { return call_once("GET", "/config/", nullptr, nullptr, nullptr); }

status caddy_admin::load(const json& config) {
  if (!config.is_object()) return status::invalid_argument("caddy load: config is not an object");
  std::string body = config.dump();
  return call("POST", "/load", &body, nullptr, nullptr);
}

status caddy_admin::set_upstream(const std::string& route_id, uint16_t port) {
  if (!caddy_valid_name(route_id)) return bad_name("route id", route_id);
  if (port == 0) return status::invalid_argument("caddy set_upstream: port 0");
  std::string body = caddy_upstreams_json(port).dump();
  return call("PATCH", "/id/" + route_id + "/handle/0/upstreams", &body, nullptr, nullptr);
}

status caddy_admin::put_server(const std::string& name, const json& server) {
  if (!caddy_valid_name(name)) return bad_name("server name", name);
  if (!server.is_object()) return status::invalid_argument("caddy put_server: server is not an object");
  std::string body = server.dump();
  return call("POST", kServersPath + name, &body, nullptr, nullptr);
}

status caddy_admin::delete_server(const std::string& name) {
  if (!caddy_valid_name(name)) return bad_name("server name", name);
  status s = call("DELETE", kServersPath + name, nullptr, nullptr, nullptr);
  if (s.which() == status::code::not_found) return status::ok();
  return s;
}

status caddy_admin::add_host_route(const json& route) {
  if (!route.is_object() || !route.contains("@id") || !route["@id"].is_string())
    return status::invalid_argument("caddy add_host_route: the route needs a string \"@id\"");
  const std::string id = route["@id"].get<std::string>();
  if (!caddy_valid_name(id)) return bad_name("route id", id);
  std::string body = route.dump();
  const std::string insert_path = std::string(kServersPath) + kCaddyHostsServer + "/routes/0";
  // Replace in place when the id exists (one atomic change), else insert at the front. Whether
  // it exists is asked with a GET: a PATCH of a missing id is answered 404 before Caddy reads
  // the body, and the connection closed under the body's write ("write error", no answer) under
  // load. The insert is not sent twice blindly: after a reset without answer, the GET comes
  // first again and finds the route if the insert did happen.
  status s;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    std::string existing;
    s = call("GET", "/id/" + id, nullptr, &existing, nullptr);
    if (s) return call("PATCH", "/id/" + id, &body, nullptr, nullptr);
    if (s.which() != status::code::not_found) return s;
    int code = 0;
    s = call("PUT", insert_path, &body, nullptr, &code);
    if (s || code != 0) return s;
    std::this_thread::sleep_for(kRetryPause * (attempt + 1));
  }
  return s;
}

status caddy_admin::delete_id(const std::string& id) {
  if (!caddy_valid_name(id)) return bad_name("id", id);
  status s = call("DELETE", "/id/" + id, nullptr, nullptr, nullptr);
  if (s.which() == status::code::not_found) return status::ok();
  return s;
}

status caddy_admin::config(json* out) {
  std::string body;
  status s = call("GET", "/config/", nullptr, &body, nullptr);
  if (!s) return s;
  auto j = json::parse(body, nullptr, false);
  if (j.is_discarded()) return status::io_error("caddy GET /config/: answer is not JSON");
  if (out) *out = std::move(j);
  return status::ok();
}

status caddy_admin::stop() { return call("POST", "/stop", nullptr, nullptr, nullptr); }

status wait_admin_ready(const std::string& socket_path, milliseconds timeout) {
  using steady = std::chrono::steady_clock;
  const auto deadline = steady::now() + timeout;
  caddy_admin admin(socket_path);
  for (;;) {
    status s = admin.ping();
    if (s) return s;
    auto now = steady::now();
    if (now >= deadline)
      return status::io_error("caddy's admin socket not ready after " +
                              std::to_string(timeout.count()) + " ms: " + s.message());
    std::this_thread::sleep_for(std::min<steady::duration>(milliseconds(20), deadline - now));
  }
}

}  // namespace berth
