// One typed config struct. Sources, later ones winning: embedded defaults, a JSON file
// (--config / BERTH_CONFIG), BERTH_* environment variables, command-line flags.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "config/urls.hpp"

namespace CLI {
class App;
}

namespace berth {

struct port_range {
  uint16_t lo = 0;
  uint16_t hi = 0;
  bool contains(uint16_t p) const { return p >= lo && p <= hi; }
  size_t size() const { return static_cast<size_t>(hi) - lo + 1; }
};

// The sandbox every process berth starts for a project runs in (runtime/process/sandbox.hpp).
struct sandbox_settings {
  std::string mode = "bwrap";          // bwrap (bubblewrap) | off (apps run as berth itself)
  uint32_t uid_lo = 61184;             // the projects' own uids/gids when berth is root
  uint32_t uid_hi = 65519;             // (systemd's range for dynamic users)
  bool enabled() const { return mode != "off"; }
};

// How production deploys run; handed to the project actors.
struct deploy_settings {
  site_address site;                        // <scheme>://<name>.<domain_suffix>[:port]
  std::string template_manifest;            // JSON text of the one-shot deploy template ("" = none)
  int build_timeout_s = 600;                // the building phase
  int phase_timeout_s = 300;                // every other phase (health checks have their own)
  int stop_grace_ms = 3000;                 // SIGTERM -> SIGKILL when stopping a release
  bool proxy = false;                       // switch through Caddy (resolved from switch_mode)
  int drain_ms = 30000;                     // proxy mode: old release keeps running this long
  // Why production.canary cannot run on this server ("" when it can): it needs the proxy, with
  // HAProxy as its engine (resolved with switch_mode, and when the traffic meter opens).
  std::string canary_unavailable = "production.canary needs the proxy (--switch-mode proxy)";
  // Keeping production up: the reconciler's pass, and restarts of a release that died.
  int reconcile_interval_ms = 5000;         // periodic level-triggered pass (and one at start)
  int restart_base_ms = 250;                // first death: at once; n-th: base x 2^(n-2), half to all
  int restart_max_ms = 30000;               // cap of the restart delay
  int crash_loop_restarts = 5;              // more restarts than this within the window...
  int crash_loop_window_s = 60;             // ...mark the release `crashed`
  sandbox_settings sandbox;
  std::string registry;  // swarm: where release images are pushed when image.registry is not set
};

// Transient failures of runtime backends (process driver, proxy): one retry policy and one
// circuit breaker per backend.
struct resilience_settings {
  int retry_attempts = 5;        // attempts after the first one
  int retry_base_ms = 1000;      // 1-2-4-8-16 s, each a full-jitter draw below the cap
  int retry_max_ms = 16000;
  int breaker_failures = 5;      // consecutive failures that open a backend's breaker
  int breaker_open_ms = 60000;   // open -> half-open after this long
};

// The proxy in front of the releases (proxy switch mode): a router (HAProxy, or Caddy) and,
// for HTTPS sites, Caddy as a TLS front with a config that never changes while berth runs.
struct proxy_settings {
  std::string switch_mode = "auto";  // auto (proxy when a router is installed) | direct | proxy
  std::string engine = "auto";       // auto (haproxy when installed, else caddy) | haproxy | caddy
  std::string haproxy = "haproxy";   // the binaries (PATH lookup without '/')
  std::string caddy = "caddy";
  std::string listen_host = "127.0.0.1";  // of the shared site listeners (stable ports: loopback)
  uint16_t http_port = 0;            // shared listener for <name>.<domain_suffix>; 0 = a free port
  // HTTPS for sites: off | acme | internal (Caddy's own CA). With it on, Caddy owns http_port
  // (redirects, ACME challenges) and https_port, and the router listens on inner_port.
  std::string sites_tls = "off";
  uint16_t https_port = 0;           // 0 = a free port (kept across restarts)
  std::string acme_directory = "https://acme-v02.api.letsencrypt.org/directory";
  std::string acme_email;
  std::string acme_ca_root;          // PEM roots trusted for the ACME server's own HTTPS ("" = system)
  // Resolved at start (cli/serve.cpp), kept in the log: the router's host listener behind the
  // TLS front, and its on-demand TLS ask frontend.
  uint16_t inner_port = 0, ask_port = 0;
  bool tls() const { return sites_tls != "off"; }
};

// Resource limits (manifest `limits`), applied with one cgroup per instance.
struct limits_settings {
  std::string cgroup_root = "auto";  // auto | off | a cgroup v2 folder delegated to berth
  // Resolved at start (cli/serve.cpp): "" = limits are applied; else why not.
  std::string unavailable;
  std::string mode = "none";         // resolved: "cgroup v1" | "cgroup v2" | "none"
};

// The container runtimes (manifest `runtime`: docker, swarm) and the engine they talk to.
struct container_settings {
  // The Docker Engine API: "unix:///path/docker.sock" (or a bare socket path). "" = DOCKER_HOST
  // when set, else unix:///var/run/docker.sock; "off" = no container runtimes on this server.
  std::string docker_host;
  bool enabled() const { return docker_host != "off"; }
};

struct config {
  std::string config_file;
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 7070;
  std::string data_dir = "./berth-data";
  std::string audit_key;                    // "" = default_audit_key_path() (runtime/eventlog/audit_anchor.hpp)
  uint64_t audit_checkpoint_every = 1000;   // signed checkpoint after this many events
  std::string log_format = "human";  // human | json
  std::string log_level = "info";
  port_range production_ports{8000, 9999};
  port_range preview_ports{4000, 7999};
  size_t max_body_bytes = 1 << 20;
  // Workspace source uploads (http/routes_source.cpp, runtime/workspace/upload_extract.hpp): the
  // body as sent (also of one file written), and what an archive may unpack to.
  uint64_t max_upload_bytes = 512ull << 20;
  uint64_t max_upload_files = 100000;
  uint64_t max_upload_unpacked_bytes = 2048ull << 20;
  int http_threads = 16;
  int http_queue = 1024;       // connections waiting for a worker; more get 503 `saturated`
  int http_long_calls = 256;   // calls waiting for the actors without holding a worker
  int http_streams = 128;      // of those, open event streams (SSE); more get 503 `saturated`
  int request_timeout_ms = 10000;
  int scheduler_threads = 0;  // 0: CAF's default (cores)
  std::string deploy_template;  // path of the template manifest file (read into deploy)
  deploy_settings deploy;
  proxy_settings proxy;
  resilience_settings resilience;
  // Security: every /api/* route needs `Authorization: Bearer <token>`. "" = the token in
  // <data>/token, created (0600) at first start.
  std::string token;
  // HTTPS for the API (PEM files); off loopback berth needs them or insecure_http.
  std::string tls_cert, tls_key;
  bool insecure_http = false;
  // GET /metrics without the token (for a Prometheus on a trusted network).
  bool metrics_public = false;
  // POST /api/debug/crash and /api/debug/fail; refused unless listening on loopback.
  bool enable_fault_injection = false;
  // SIGTERM: how long the running deploy phases get to reach a boundary; apps keep running
  // unless stop_apps_on_exit.
  int shutdown_grace_ms = 10000;
  bool stop_apps_on_exit = false;
  limits_settings limits;
  container_settings containers;
  // Full disk: room held back in <data>/.reserve, released when the disk fills (0: no guard).
  int disk_reserve_mb = 8;
  // App, preview and Caddy logs rotate by size: at most log_max_bytes × log_max_files bytes.
  long long log_max_bytes = 10 << 20;  // 0: no rotation
  int log_max_files = 5;
};

// Binds every option to `app` as a flag with its BERTH_* variable and help text, and
// applies the sources in order once `app` has parsed. Errors throw CLI::ValidationError.
class config_loader {
 public:
  explicit config_loader(config& cfg);
  void add_options(CLI::App& app);
  // Call after app.parse(): file, then env, then flags.
  void resolve();

 private:
  struct option {
    std::string key, flag, env, help, fallback;
    std::function<void(const std::string&)> set;
    std::string flag_value;
    bool given = false;
    bool is_flag = false;  // --flag without a value (sets "true")
  };
  config& cfg_;
  std::vector<option> options_;
};

// "127.0.0.1:7070" → host/port; false on bad input.
bool parse_host_port(const std::string& s, std::string& host, uint16_t& port);
bool parse_port_range(const std::string& s, port_range& r);
// 127.0.0.1, ::1, localhost and the rest of 127.0.0.0/8.
bool is_loopback_host(const std::string& host);

}  // namespace berth
