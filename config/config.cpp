#include "config/config.hpp"

#include "messages/manifest.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdlib>
#include <fstream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace berth {

namespace {

long parse_long(const std::string& key, const std::string& v, long lo, long hi) {
  try {
    size_t used = 0;
    long n = std::stol(v, &used);
    if (used == v.size() && n >= lo && n <= hi) return n;
  } catch (...) {
  }
  throw CLI::ValidationError(key, "expected an integer in [" + std::to_string(lo) + ", " +
                                      std::to_string(hi) + "], got '" + v + "'");
}

std::string one_of(const std::string& key, const std::string& v,
                   std::initializer_list<const char*> allowed) {
  for (auto* a : allowed)
    if (v == a) return v;
  throw CLI::ValidationError(key, "unsupported value '" + v + "'");
}

// The one-shot deploy template is a manifest whose name is filled in per request; it must
// be valid for any name, so it is checked with a stand-in one at start.
void load_template(config& c) {
  std::ifstream in(c.deploy_template);
  if (!in) throw CLI::ValidationError("deploy_template", "cannot read " + c.deploy_template);
  auto j = nlohmann::json::parse(in, nullptr, false);
  if (!j.is_object())
    throw CLI::ValidationError("deploy_template", c.deploy_template + " is not a JSON object");
  j["name"] = "template-check";
  auto parsed = parse_manifest(j);
  if (!parsed.ok)
    throw CLI::ValidationError("deploy_template", c.deploy_template + ": " + parsed.error);
  j.erase("name");
  c.deploy.template_manifest = j.dump();
}

bool parse_bool(const std::string& key, const std::string& v) {
  if (v == "true" || v == "1" || v == "yes") return true;
  if (v == "false" || v == "0" || v == "no") return false;
  throw CLI::ValidationError(key, "expected true or false, got '" + v + "'");
}

}  // namespace

bool is_loopback_host(const std::string& host) {
  if (host == "localhost") return true;
  auto h = host.size() > 2 && host.front() == '[' && host.back() == ']' ? host.substr(1, host.size() - 2) : host;
  in_addr v4{};
  if (::inet_pton(AF_INET, h.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  return ::inet_pton(AF_INET6, h.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

bool parse_host_port(const std::string& s, std::string& host, uint16_t& port) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  try {
    size_t used = 0;
    long p = std::stol(s.substr(colon + 1), &used);
    if (used != s.size() - colon - 1 || p < 0 || p > 65535) return false;
    host = s.substr(0, colon);
    port = static_cast<uint16_t>(p);
    return true;
  } catch (...) {
    return false;
  }
}

bool parse_port_range(const std::string& s, port_range& r) {
  auto dash = s.find('-');
  if (dash == std::string::npos) return false;
  try {
    long lo = std::stol(s.substr(0, dash)), hi = std::stol(s.substr(dash + 1));
    if (lo < 1024 || hi > 65535 || lo > hi) return false;
    r = {static_cast<uint16_t>(lo), static_cast<uint16_t>(hi)};
    return true;
  } catch (...) {
    return false;
  }
}

config_loader::config_loader(config& cfg) : cfg_(cfg) {
  auto& c = cfg_;
  options_ = {
      {"listen", "--listen", "BERTH_LISTEN", "address of the HTTP control endpoint (host:port)", "127.0.0.1:7070",
       [&c](const std::string& v) {
         if (!parse_host_port(v, c.listen_host, c.listen_port))
           throw CLI::ValidationError("listen", "expected host:port, got '" + v + "'");
       }},
      {"data", "--data", "BERTH_DATA", "data directory (event log, projects)", "./berth-data",
       [&c](const std::string& v) { c.data_dir = v; }},
      {"log_format", "--log-format", "BERTH_LOG_FORMAT", "human or json (JSON lines)", "human",
       [&c](const std::string& v) { c.log_format = one_of("log_format", v, {"human", "json"}); }},
      {"log_level", "--log-level", "BERTH_LOG_LEVEL", "trace, debug, info, warn, error", "info",
       [&c](const std::string& v) {
         c.log_level = one_of("log_level", v, {"trace", "debug", "info", "warn", "error"});
       }},
      {"production_ports", "--production-ports", "BERTH_PRODUCTION_PORTS",
       "range of stable production ports (lo-hi)", "8000-9999",
       [&c](const std::string& v) {
         if (!parse_port_range(v, c.production_ports))
           throw CLI::ValidationError("production_ports", "expected lo-hi, got '" + v + "'");
       }},
      {"preview_ports", "--preview-ports", "BERTH_PREVIEW_PORTS",
       "range of preview and candidate ports (lo-hi), disjoint from production", "4000-7999",
       [&c](const std::string& v) {
         if (!parse_port_range(v, c.preview_ports))
           throw CLI::ValidationError("preview_ports", "expected lo-hi, got '" + v + "'");
       }},
      {"max_body_bytes", "--max-body-bytes", "BERTH_MAX_BODY_BYTES",
       "largest accepted request body", "1048576",
       [&c](const std::string& v) {
         c.max_body_bytes = parse_long("max_body_bytes", v, 1024, 64L << 20);
       }},
      {"max_upload_bytes", "--max-upload-bytes", "BERTH_MAX_UPLOAD_BYTES",
       "largest source upload (PUT /api/projects/{name}/source: the tar.gz as sent, or one file)", "536870912",
       [&c](const std::string& v) {
         c.max_upload_bytes = parse_long("max_upload_bytes", v, 1024, 1L << 40);
       }},
      {"max_upload_files", "--max-upload-files", "BERTH_MAX_UPLOAD_FILES",
       "most entries (files, folders, links) a source upload may unpack to", "100000",
       [&c](const std::string& v) { c.max_upload_files = parse_long("max_upload_files", v, 1, 100000000); }},
      {"max_upload_unpacked_bytes", "--max-upload-unpacked-bytes", "BERTH_MAX_UPLOAD_UNPACKED_BYTES",
       "most bytes of file data a source upload may unpack to", "2147483648",
       [&c](const std::string& v) {
         c.max_upload_unpacked_bytes = parse_long("max_upload_unpacked_bytes", v, 1024, 1L << 42);
       }},
      {"http_threads", "--http-threads", "BERTH_HTTP_THREADS",
       "HTTP worker threads at most (made when needed; a connection holds one only while its request is read and answered)", "16",
       [&c](const std::string& v) { c.http_threads = parse_long("http_threads", v, 2, 1024); }},
      {"http_queue", "--http-queue", "BERTH_HTTP_QUEUE",
       "connections that may wait for an HTTP worker; more are answered 503 saturated", "1024",
       [&c](const std::string& v) { c.http_queue = parse_long("http_queue", v, 1, 65536); }},
      {"http_long_calls", "--http-long-calls", "BERTH_HTTP_LONG_CALLS",
       "calls that may wait for long (preview start, event streams) without holding a worker", "256",
       [&c](const std::string& v) { c.http_long_calls = parse_long("http_long_calls", v, 1, 4096); }},
      {"http_streams", "--http-streams", "BERTH_HTTP_STREAMS",
       "event streams (deployment progress, logs, dashboard) that may be open at once; more are answered "
       "503 saturated (at most --http-long-calls)", "128",
       [&c](const std::string& v) { c.http_streams = parse_long("http_streams", v, 1, 4096); }},
      {"request_timeout_ms", "--request-timeout-ms", "BERTH_REQUEST_TIMEOUT_MS",
       "how long an API request waits for the actors", "10000",
       [&c](const std::string& v) {
         c.request_timeout_ms = parse_long("request_timeout_ms", v, 100, 600000);
       }},
      {"scheduler_threads", "--scheduler-threads", "BERTH_SCHEDULER_THREADS",
       "CAF scheduler threads (0: one per core)", "0",
       [&c](const std::string& v) {
         c.scheduler_threads = parse_long("scheduler_threads", v, 0, 256);
       }},
      {"domain_suffix", "--domain-suffix", "BERTH_DOMAIN_SUFFIX",
       "projects answer as <name>.<suffix>", "localhost",
       [&c](const std::string& v) {
         if (v.empty() || v.size() > 200 || v.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789.-") != std::string::npos ||
             v.front() == '.' || v.front() == '-' || v.back() == '.' || v.back() == '-')
           throw CLI::ValidationError("domain_suffix", "expected a lowercase DNS name, got '" + v + "'");
         c.deploy.site.domain_suffix = v;
       }},
      {"public_scheme", "--public-scheme", "BERTH_PUBLIC_SCHEME",
       "scheme of the project URLs berth reports (http or https)", "http",
       [&c](const std::string& v) { c.deploy.site.scheme = one_of("public_scheme", v, {"http", "https"}); }},
      {"deploy_template", "--deploy-template", "BERTH_DEPLOY_TEMPLATE",
       "manifest file used by POST /api/deploy {name} (its name is replaced)", "none",
       [&c](const std::string& v) { c.deploy_template = v; }},
      {"build_timeout_s", "--build-timeout-s", "BERTH_BUILD_TIMEOUT_S",
       "longest a build may run", "600",
       [&c](const std::string& v) { c.deploy.build_timeout_s = parse_long("build_timeout_s", v, 1, 86400); }},
      {"phase_timeout_s", "--phase-timeout-s", "BERTH_PHASE_TIMEOUT_S",
       "longest any other deploy phase may run (health checks also have their own)", "300",
       [&c](const std::string& v) { c.deploy.phase_timeout_s = parse_long("phase_timeout_s", v, 1, 86400); }},
      {"stop_grace_ms", "--stop-grace-ms", "BERTH_STOP_GRACE_MS",
       "SIGTERM to SIGKILL grace when a release is stopped", "3000",
       [&c](const std::string& v) { c.deploy.stop_grace_ms = parse_long("stop_grace_ms", v, 0, 600000); }},
      {"switch_mode", "--switch-mode", "BERTH_SWITCH_MODE",
       "auto (proxy when Caddy is installed), direct, or proxy", "auto",
       [&c](const std::string& v) { c.proxy.switch_mode = one_of("switch_mode", v, {"auto", "direct", "proxy"}); }},
      {"proxy_engine", "--proxy-engine", "BERTH_PROXY_ENGINE",
       "the router in proxy mode: auto (haproxy when installed, else caddy), haproxy, or caddy", "auto",
       [&c](const std::string& v) { c.proxy.engine = one_of("proxy_engine", v, {"auto", "haproxy", "caddy"}); }},
      {"haproxy", "--haproxy", "BERTH_HAPROXY", "the HAProxy binary (the default router)", "haproxy",
       [&c](const std::string& v) { c.proxy.haproxy = v; }},
      {"caddy", "--caddy", "BERTH_CADDY", "the Caddy binary (TLS front for sites; router with --proxy-engine caddy)",
       "caddy", [&c](const std::string& v) { c.proxy.caddy = v; }},
      {"sites_listen", "--sites-listen", "BERTH_SITES_LISTEN",
       "address of the sites' shared listeners (HTTP, and HTTPS with --sites-tls)", "127.0.0.1",
       [&c](const std::string& v) {
         if (v.empty() || v.find_first_of(" /:") != std::string::npos)
           throw CLI::ValidationError("sites_listen", "expected an IPv4 address or a host name, got '" + v + "'");
         c.proxy.listen_host = v;
       }},
      {"sites_tls", "--sites-tls", "BERTH_SITES_TLS",
       "HTTPS for sites: off, acme (certificates from --acme-directory), or internal (Caddy's local CA)", "off",
       [&c](const std::string& v) { c.proxy.sites_tls = one_of("sites_tls", v, {"off", "acme", "internal"}); }},
      {"sites_https_port", "--sites-https-port", "BERTH_SITES_HTTPS_PORT",
       "port of the sites' HTTPS listener with --sites-tls (0: a free port, kept across restarts)", "0",
       [&c](const std::string& v) { c.proxy.https_port = parse_long("sites_https_port", v, 0, 65535); }},
      {"acme_directory", "--acme-directory", "BERTH_ACME_DIRECTORY",
       "ACME directory URL the sites' certificates come from (--sites-tls acme)",
       "https://acme-v02.api.letsencrypt.org/directory",
       [&c](const std::string& v) {
         if (v.rfind("https://", 0) != 0)
           throw CLI::ValidationError("acme_directory", "expected an https:// URL, got '" + v + "'");
         c.proxy.acme_directory = v;
       }},
      {"acme_email", "--acme-email", "BERTH_ACME_EMAIL", "contact e-mail of the ACME account", "none",
       [&c](const std::string& v) {
         if (!v.empty() && (v.find('@') == std::string::npos || v.find_first_of(" \"<>") != std::string::npos))
           throw CLI::ValidationError("acme_email", "expected an e-mail address, got '" + v + "'");
         c.proxy.acme_email = v;
       }},
      {"acme_ca_root", "--acme-ca-root", "BERTH_ACME_CA_ROOT",
       "PEM file of roots trusted for the ACME server's own HTTPS (a private ACME CA)", "system roots",
       [&c](const std::string& v) { c.proxy.acme_ca_root = v; }},
      {"proxy_http_port", "--proxy-http-port", "BERTH_PROXY_HTTP_PORT",
       "port of the sites' shared HTTP listener for <name>.<domain_suffix> (0: a free port, kept across restarts)", "0",
       [&c](const std::string& v) { c.proxy.http_port = parse_long("proxy_http_port", v, 0, 65535); }},
      {"proxy_admin_port", "--proxy-admin-port", "BERTH_PROXY_ADMIN_PORT",
       "removed: Caddy's admin API listens only on a unix socket in <data>/proxy/admin (0700)", "none",
       [](const std::string&) -> void {
         throw CLI::ValidationError("proxy_admin_port",
                                    "is no longer supported: Caddy's admin API listens only on the unix socket "
                                    "<data>/proxy/admin/caddy.sock (a folder only berth's user can enter), never "
                                    "on a TCP port; remove the option");
       }},
      {"audit_key", "--audit-key", "BERTH_AUDIT_KEY",
       "Ed25519 key that signs the event log's checkpoints; kept outside the data dir, created 0600 at first "
       "start",
       "/etc/berth/audit.key as root, else $XDG_CONFIG_HOME/berth/audit.key",
       [&c](const std::string& v) { c.audit_key = v; }},
      {"audit_checkpoint_every", "--audit-checkpoint-every", "BERTH_AUDIT_CHECKPOINT_EVERY",
       "append a signed checkpoint of the log's head after this many events (and at shutdown)", "1000",
       [&c](const std::string& v) {
         c.audit_checkpoint_every = parse_long("audit_checkpoint_every", v, 1, 100000000);
       }},
      {"drain_ms", "--drain-ms", "BERTH_DRAIN_MS",
       "proxy mode: how long the old release keeps running after the switch", "30000",
       [&c](const std::string& v) { c.deploy.drain_ms = parse_long("drain_ms", v, 0, 3600000); }},
      {"reconcile_interval_ms", "--reconcile-interval-ms", "BERTH_RECONCILE_INTERVAL_MS",
       "how often each project's desired state is checked against its processes", "5000",
       [&c](const std::string& v) {
         c.deploy.reconcile_interval_ms = parse_long("reconcile_interval_ms", v, 50, 3600000);
       }},
      {"restart_base_ms", "--restart-base-ms", "BERTH_RESTART_BASE_MS",
       "restart delay unit: an app that ran cleanly restarts at once; its n-th death in a row waits base x 2^(n-2) (half to all of it), up to --restart-max-ms", "250",
       [&c](const std::string& v) { c.deploy.restart_base_ms = parse_long("restart_base_ms", v, 1, 600000); }},
      {"restart_max_ms", "--restart-max-ms", "BERTH_RESTART_MAX_MS", "cap of the restart delay", "30000",
       [&c](const std::string& v) { c.deploy.restart_max_ms = parse_long("restart_max_ms", v, 1, 3600000); }},
      {"crash_loop_restarts", "--crash-loop-restarts", "BERTH_CRASH_LOOP_RESTARTS",
       "restarts within the crash-loop window after which a release is marked crashed", "5",
       [&c](const std::string& v) {
         c.deploy.crash_loop_restarts = parse_long("crash_loop_restarts", v, 1, 1000);
       }},
      {"crash_loop_window_s", "--crash-loop-window-s", "BERTH_CRASH_LOOP_WINDOW_S",
       "the crash-loop window", "60",
       [&c](const std::string& v) {
         c.deploy.crash_loop_window_s = parse_long("crash_loop_window_s", v, 1, 86400);
       }},
      {"disk_reserve_mb", "--disk-reserve-mb", "BERTH_DISK_RESERVE_MB",
       "room held back in <data>/.reserve for the event log when the disk fills (0: no full-disk guard)", "8",
       [&c](const std::string& v) { c.disk_reserve_mb = parse_long("disk_reserve_mb", v, 0, 1 << 20); }},
      {"log_max_bytes", "--log-max-bytes", "BERTH_LOG_MAX_BYTES",
       "app, preview and Caddy logs rotate past this size (0: no rotation)", "10485760",
       [&c](const std::string& v) { c.log_max_bytes = parse_long("log_max_bytes", v, 0, 1L << 40); }},
      {"log_max_files", "--log-max-files", "BERTH_LOG_MAX_FILES", "rotated log files kept, the current one included",
       "5", [&c](const std::string& v) { c.log_max_files = parse_long("log_max_files", v, 1, 1000); }},
      {"retry_attempts", "--retry-attempts", "BERTH_RETRY_ATTEMPTS",
       "retries of a transient backend failure", "5",
       [&c](const std::string& v) { c.resilience.retry_attempts = parse_long("retry_attempts", v, 0, 100); }},
      {"retry_base_ms", "--retry-base-ms", "BERTH_RETRY_BASE_MS",
       "first retry delay (doubles; full jitter)", "1000",
       [&c](const std::string& v) { c.resilience.retry_base_ms = parse_long("retry_base_ms", v, 0, 600000); }},
      {"retry_max_ms", "--retry-max-ms", "BERTH_RETRY_MAX_MS", "cap of a retry delay", "16000",
       [&c](const std::string& v) { c.resilience.retry_max_ms = parse_long("retry_max_ms", v, 0, 3600000); }},
      {"breaker_failures", "--breaker-failures", "BERTH_BREAKER_FAILURES",
       "consecutive failures that open a backend's circuit breaker", "5",
       [&c](const std::string& v) {
         c.resilience.breaker_failures = parse_long("breaker_failures", v, 1, 1000);
       }},
      {"breaker_open_ms", "--breaker-open-ms", "BERTH_BREAKER_OPEN_MS",
       "how long an open breaker fails fast before it lets one call through", "60000",
       [&c](const std::string& v) {
         c.resilience.breaker_open_ms = parse_long("breaker_open_ms", v, 1, 86400000);
       }},
      {"token", "--token", "BERTH_TOKEN",
       "API bearer token for /api/*", "the one in <data>/token (created 0600 at first start on loopback)",
       [&c](const std::string& v) {
         if (v.size() < 16 || v.size() > 256 ||
             v.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/=") !=
                 std::string::npos)
           throw CLI::ValidationError("token", "expected 16-256 token characters");
         c.token = v;
       }},
      {"tls_cert", "--tls-cert", "BERTH_TLS_CERT", "PEM certificate (chain) for serving the API over HTTPS",
       "none", [&c](const std::string& v) { c.tls_cert = v; }},
      {"tls_key", "--tls-key", "BERTH_TLS_KEY", "PEM private key of --tls-cert", "none",
       [&c](const std::string& v) { c.tls_key = v; }},
      {"insecure_http", "--insecure-http", "BERTH_INSECURE_HTTP",
       "allow plain HTTP on a non-loopback --listen address (the token crosses the network in clear)", "false",
       [&c](const std::string& v) { c.insecure_http = parse_bool("insecure_http", v); }, "", false, true},
      {"metrics_public", "--metrics-public", "BERTH_METRICS_PUBLIC",
       "serve GET /metrics without the API token (it shows project names and counts, never secrets)", "false",
       [&c](const std::string& v) { c.metrics_public = parse_bool("metrics_public", v); }, "", false, true},
      {"enable_fault_injection", "--enable-fault-injection", "BERTH_ENABLE_FAULT_INJECTION",
       "expose POST /api/debug/crash and /api/debug/fail (loopback only; for tests)", "false",
       [&c](const std::string& v) { c.enable_fault_injection = parse_bool("enable_fault_injection", v); },
       "", false, true},
      {"shutdown_grace_ms", "--shutdown-grace-ms", "BERTH_SHUTDOWN_GRACE_MS",
       "on SIGTERM, how long running deploy phases get to reach a boundary", "10000",
       [&c](const std::string& v) { c.shutdown_grace_ms = parse_long("shutdown_grace_ms", v, 0, 600000); }},
      {"sandbox", "--sandbox", "BERTH_SANDBOX",
       "bwrap: every build, preview and release runs in a bubblewrap sandbox; off: as berth itself", "bwrap",
       [&c](const std::string& v) { c.deploy.sandbox.mode = one_of("sandbox", v, {"bwrap", "off"}); }},
      {"sandbox_uids", "--sandbox-uids", "BERTH_SANDBOX_UIDS",
       "range of the projects' own uids/gids when berth is root (lo-hi)", "61184-65519",
       [&c](const std::string& v) {
         try {
           size_t dash = v.find('-'), lo_end = 0, hi_end = 0;
           if (dash == std::string::npos) throw std::invalid_argument(v);
           long long lo = std::stoll(v.substr(0, dash), &lo_end), hi = std::stoll(v.substr(dash + 1), &hi_end);
           if (lo_end != dash || hi_end != v.size() - dash - 1 || lo < 1000 || hi > 2147483646 || lo > hi)
             throw std::invalid_argument(v);
           c.deploy.sandbox.uid_lo = static_cast<uint32_t>(lo);
           c.deploy.sandbox.uid_hi = static_cast<uint32_t>(hi);
         } catch (const std::exception&) {
           throw CLI::ValidationError("sandbox_uids", "expected lo-hi with 1000 <= lo <= hi, got '" + v + "'");
         }
       }},
      {"docker_host", "--docker-host", "BERTH_DOCKER_HOST",
       "the Docker Engine API for the docker and swarm runtimes: unix:///path/docker.sock, or off "
       "(default: DOCKER_HOST, else unix:///var/run/docker.sock)",
       "",
       [&c](const std::string& v) {
         if (!v.empty() && v != "off" && v[0] != '/' && v.rfind("unix://", 0) != 0)
           throw CLI::ValidationError("docker_host", "expected unix:///path/docker.sock or off, got '" + v + "'");
         c.containers.docker_host = v;
       }},
      {"registry", "--registry", "BERTH_REGISTRY",
       "swarm runtime: the registry (host[:port]) release images are pushed to, for projects whose manifest "
       "names none",
       "none",
       [&c](const std::string& v) {
         if (v.find_first_of("/ @") != std::string::npos)
           throw CLI::ValidationError("registry", "expected host[:port], got '" + v + "'");
         c.deploy.registry = v;
       }},
      {"stop_apps_on_exit", "--stop-apps-on-exit", "BERTH_STOP_APPS_ON_EXIT",
       "stop previews and production releases when berth stops (default: they keep running)", "false",
       [&c](const std::string& v) { c.stop_apps_on_exit = parse_bool("stop_apps_on_exit", v); },
       "", false, true},
      {"cgroup_root", "--cgroup-root", "BERTH_CGROUP_ROOT",
       "where limits' cgroups are made: auto (v2 with controllers, else v1), off, or a cgroup v2 folder "
       "delegated to berth",
       "auto",
       [&c](const std::string& v) {
         if (v != "auto" && v != "off" && (v.empty() || v[0] != '/'))
           throw CLI::ValidationError("cgroup_root", "expected auto, off or an absolute path, got '" + v + "'");
         c.limits.cgroup_root = v;
       }},
  };
}

void config_loader::add_options(CLI::App& app) {
  app.add_option("--config", cfg_.config_file, "JSON config file (keys as the flags, with '_')")
      ->envname("BERTH_CONFIG");
  for (auto& o : options_) {
    auto help = o.help + " (default " + o.fallback + ") [env " + o.env + "]";
    if (o.is_flag) {
      app.add_flag_callback(o.flag, [&o] {
        o.given = true;
        o.flag_value = "true";
      }, help);
      continue;
    }
    auto* opt = app.add_option(o.flag, o.flag_value, help);
    opt->each([&o](const std::string&) { o.given = true; });
  }
}

void config_loader::resolve() {
  if (!cfg_.config_file.empty()) {
    std::ifstream in(cfg_.config_file);
    if (!in) throw CLI::ValidationError("config", "cannot read " + cfg_.config_file);
    auto j = nlohmann::json::parse(in, nullptr, false);
    if (!j.is_object()) throw CLI::ValidationError("config", cfg_.config_file + " is not a JSON object");
    for (auto& [key, value] : j.items()) {
      auto it = std::find_if(options_.begin(), options_.end(),
                             [&](const option& o) { return o.key == key; });
      if (it == options_.end()) throw CLI::ValidationError("config", "unknown key '" + key + "'");
      it->set(value.is_string() ? value.get<std::string>() : value.dump());
    }
  }
  for (auto& o : options_)
    if (const char* v = std::getenv(o.env.c_str()); v != nullptr && *v != '\0') o.set(v);
  for (auto& o : options_)
    if (o.given) o.set(o.flag_value);
  if (cfg_.production_ports.lo <= cfg_.preview_ports.hi &&
      cfg_.preview_ports.lo <= cfg_.production_ports.hi)
    throw CLI::ValidationError("preview_ports", "must not overlap the production range");
  if (!cfg_.deploy_template.empty()) load_template(cfg_);
  if (cfg_.enable_fault_injection && !is_loopback_host(cfg_.listen_host))
    throw CLI::ValidationError("enable_fault_injection", "is refused unless berth listens on loopback");
  if (cfg_.tls_cert.empty() != cfg_.tls_key.empty())
    throw CLI::ValidationError(cfg_.tls_cert.empty() ? "tls_key" : "tls_cert", "needs tls_cert and tls_key together");
  if (cfg_.deploy.restart_max_ms < cfg_.deploy.restart_base_ms)
    throw CLI::ValidationError("restart_max_ms", "must not be below restart_base_ms");
}

}  // namespace berth
