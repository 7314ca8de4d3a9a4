// Caddy (2.6) as the sites' TLS front: one static config that terminates HTTPS for every site
// and hands each request to HAProxy's internal host listener (runtime/proxy/haproxy.hpp).
//
// No actor code. The config has nothing per project: which names may get a certificate is
// asked of HAProxy's ask frontend (GET /ask?domain=D answered from hosts.map), and which
// release serves a name is HAProxy's business. So Caddy is configured once, at start, and never
// reloads while berth runs - its WebSockets and streams are never cut by a deploy.
//
// Layout of the generated config:
//   admin    unix/<admin_socket> only, as caddy_config (caddy.hpp); logging as caddy_config
//   storage  file_system at <storage_dir>: ACME account, certificates and keys, the internal CA
//   server "https"  <listen_host>:<https_port>, HTTP/1.1 and HTTP/2 (ALPN h2, http/1.1; no
//            HTTP/3), certificates on demand; one route: reverse_proxy to
//            127.0.0.1:<upstream_port> with the Host header unchanged, X-Forwarded-Proto https,
//            flush_interval -1 (streamed answers and SSE are passed on at once, not buffered);
//            WebSocket upgrades pass through (over HTTP/1.1: no RFC 8441 in 2.6, so browsers
//            open their sockets on an HTTP/1.1 connection)
//   server "http"   <listen_host>:<http_port>: every request answered 308 to
//            https://<host>[:<https_port> when it is not 443]<URI>. ACME http-01 challenges
//            (/.well-known/acme-challenge/) are answered by Caddy before any route.
//   automatic_https is disabled on both servers: Caddy never guesses names from the routes,
//            adds no redirects of its own and manages no certificate up front.
//   apps.tls.automation: on_demand.ask = http://127.0.0.1:<ask_port>/ask; one policy for
//            every name, on_demand, with one issuer: "acme" (ca = acme_directory, email,
//            trusted_roots_pem_files = [acme_ca_root] when set) or "internal" (Caddy's CA "local").
//   apps.pki: the local CA never installs its root into the system trust store.
//
// Certificates: a name's first TLS handshake asks the ask endpoint (200 = allowed; anything
// else, or no answer, fails that handshake) and then obtains the certificate during the
// handshake (http-01 on http_port or tls-alpn-01 on https_port: the CA must reach this host on
// those ports). Certificates are kept in storage_dir: a restarted Caddy (2.6.2) loads a stored
// one at the name's next handshake without asking again and without a new order (public CAs
// rate-limit orders: keep storage_dir across restarts).
// Expiry: Caddy renews every certificate it manages by itself, when about a third of its
// lifetime is left (its maintenance scan runs every 10 min, and a handshake that finds its
// certificate due renews it too; test_tls_front checks it with 30 s pebble certificates: a new
// one was served ~10 s before the old one's end, no handshake failed). A failed renewal is
// retried with backoff while the old certificate is served; once that has expired, handshakes
// for the name fail until a renewal succeeds.
// Internal CA: its root lands in <storage_dir>/pki/authorities/local/root.crt (and its
// intermediate beside it, intermediate.crt); leaf certificates last 12 h and are renewed the
// same way. Clients trust that root file (it is never installed anywhere by Caddy).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/status.hpp"

namespace berth {

// The default ACME directory (Let's Encrypt's production CA).
inline constexpr const char* kLetsEncryptDirectory = "https://acme-v02.api.letsencrypt.org/directory";

struct tls_front_settings {
  std::string mode = "internal";    // "acme" | "internal"
  std::string acme_directory = kLetsEncryptDirectory;  // ACME directory URL (acme mode)
  std::string acme_email;           // account e-mail ("" = none)
  std::string acme_ca_root;         // PEM file trusted for the ACME server's own HTTPS; "" = system
  std::string listen_host = "0.0.0.0";  // where the sites' ports listen
  uint16_t http_port = 80;          // redirects to HTTPS, ACME http-01
  uint16_t https_port = 443;        // the sites
  uint16_t upstream_port = 0;       // HAProxy's internal host listener on 127.0.0.1
  uint16_t ask_port = 0;            // HAProxy's ask frontend: http://127.0.0.1:<ask_port>/ask
  std::string admin_socket;         // absolute; its folder 0700 (caddy_admin_socket)
  std::string storage_dir;          // absolute; certificates and keys: keep it 0700
};

// Checks settings before they become a config: a known mode; in acme mode an http(s)
// directory URL and an absolute acme_ca_root when set; four distinct non-zero ports; absolute
// admin socket (fitting a sockaddr_un) and storage paths. invalid_argument on failure.
status check_tls_front(const tls_front_settings& s);

// The whole Caddy config (see the top of this file). Does not validate: use check_tls_front.
nlohmann::json tls_front_config(const tls_front_settings& s);

// Where the internal CA's root certificate is: <storage_dir>/pki/authorities/local/root.crt
// (written by Caddy when it starts in internal mode).
std::string tls_front_internal_root(const std::string& storage_dir);

// How to run it: {caddy_binary, "run", "--config", config_file} (foreground; berth keeps it).
std::vector<std::string> tls_front_command(const std::string& caddy_binary, const std::string& config_file);

}  // namespace berth
