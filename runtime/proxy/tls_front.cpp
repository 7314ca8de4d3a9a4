#include "runtime/proxy/tls_front.hpp"

#include "runtime/proxy/caddy.hpp"

namespace berth {

using json = nlohmann::json;

namespace {

constexpr const char* kInternalRoot = "/pki/authorities/local/root.crt";

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

status bad(const std::string& what) { return status::invalid_argument("tls front: " + what); }

json issuer_json(const tls_front_settings& s) {
  if (s.mode == "internal") return {{"module", "internal"}};
  json acme = {{"module", "acme"}, {"ca", s.acme_directory}};
  if (!s.acme_email.empty()) acme["email"] = s.acme_email;
  if (!s.acme_ca_root.empty()) acme["trusted_roots_pem_files"] = json::array({s.acme_ca_root});
  return acme;
}

json https_server_json(const tls_front_settings& s) {
  // caddy.hpp's reverse_proxy (dial retries while HAProxy reloads, short upstream keep-alive)
  // plus what a TLS front adds. Caddy keeps the client's Host header by default.
  json proxy = reverse_proxy_json(s.upstream_port);
  proxy["flush_interval"] = -1;
  proxy["headers"] = {{"request", {{"set", {{"X-Forwarded-Proto", json::array({"https"})}}}}}};
  return {{"listen", json::array({caddy_endpoint(s.listen_host, s.https_port)})},
          {"protocols", json::array({"h1", "h2"})},
          {"automatic_https", {{"disable", true}}},
          {"tls_connection_policies", json::array({{{"alpn", json::array({"h2", "http/1.1"})}}})},
          {"routes", json::array({{{"handle", json::array({proxy})}}})}};
}

json http_server_json(const tls_front_settings& s) {
  // {http.request.host} is the Host without its port.
  std::string port = s.https_port == 443 ? "" : ":" + std::to_string(s.https_port);
  json redirect = {{"handler", "static_response"},
                   {"status_code", 308},
                   {"headers", {{"Location", json::array({"https://{http.request.host}" + port + "{http.request.uri}"})}}}};
  return {{"listen", json::array({caddy_endpoint(s.listen_host, s.http_port)})},
          {"protocols", json::array({"h1"})},
          {"automatic_https", {{"disable", true}}},
          {"routes", json::array({{{"handle", json::array({redirect})}}})}};
}

}  // namespace

status check_tls_front(const tls_front_settings& s) {
  if (s.mode != "acme" && s.mode != "internal") return bad("mode must be acme or internal, not '" + s.mode + "'");
  if (s.mode == "acme") {
    if (!starts_with(s.acme_directory, "https://") && !starts_with(s.acme_directory, "http://"))
      return bad("the ACME directory must be an http(s) URL, not '" + s.acme_directory + "'");
    if (!s.acme_ca_root.empty() && s.acme_ca_root.front() != '/')
      return bad("the ACME CA root must be an absolute path");
  }
  if (s.listen_host.empty()) return bad("empty listen_host");
  const uint16_t ports[] = {s.http_port, s.https_port, s.upstream_port, s.ask_port};
  for (size_t i = 0; i < 4; ++i) {
    if (ports[i] == 0) return bad("the http, https, upstream and ask ports must all be set");
    for (size_t j = 0; j < i; ++j)
      if (ports[i] == ports[j]) return bad("port " + std::to_string(ports[i]) + " is used twice");
  }
  if (s.admin_socket.empty() || s.admin_socket.front() != '/')
    return bad("the admin socket needs an absolute path");
  if (s.admin_socket.size() > max_admin_socket_path())
    return bad("the admin socket's path is longer than " + std::to_string(max_admin_socket_path()) + " bytes");
  if (s.storage_dir.empty() || s.storage_dir.front() != '/') return bad("the storage folder needs an absolute path");
  return status::ok();
}

json tls_front_config(const tls_front_settings& s) {
  json policy = {{"on_demand", true}, {"issuers", json::array({issuer_json(s)})}};
  json tls = {{"automation",
               {{"on_demand", {{"ask", "http://127.0.0.1:" + std::to_string(s.ask_port) + "/ask"}}},
                {"policies", json::array({policy})}}}};
  // http_port/https_port tell Caddy's ACME solvers where its own listeners are (they then
  // answer challenges there instead of binding :80/:443 themselves).
  json http = {{"http_port", s.http_port},
               {"https_port", s.https_port},
               {"servers", {{"https", https_server_json(s)}, {"http", http_server_json(s)}}}};
  // Caddy would try to install its local CA's root into the system trust store (as root it can).
  json pki = {{"certificate_authorities", {{"local", {{"install_trust", false}}}}}};
  return {{"admin", caddy_admin_json(s.admin_socket)},
          {"logging", caddy_logging_json()},
          {"storage", {{"module", "file_system"}, {"root", s.storage_dir}}},
          {"apps", {{"http", std::move(http)}, {"tls", std::move(tls)}, {"pki", std::move(pki)}}}};
}

std::string tls_front_internal_root(const std::string& storage_dir) { return storage_dir + kInternalRoot; }

std::vector<std::string> tls_front_command(const std::string& caddy_binary, const std::string& config_file) {
  return {caddy_binary, "run", "--config", config_file};
}

}  // namespace berth
