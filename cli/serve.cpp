// `berth serve`: opens the log, boots the actor tree, serves HTTP until SIGTERM/SIGINT.
#include <algorithm>
#include <atomic>
#include <csignal>

#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>
#include <filesystem>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "actors/names.hpp"
#include "actors/tree.hpp"
#include "cli/commands.hpp"
#include "http/server.hpp"
#include "messages/atoms.hpp"
#include "messages/errors.hpp"
#include "messages/proxy.hpp"
#include "runtime/files/disk_guard.hpp"
#include "runtime/files/layout.hpp"
#include "runtime/logs/rotating_file.hpp"
#include "runtime/net/ports.hpp"
#include "runtime/proxy/caddy.hpp"
#include "runtime/logs/logging.hpp"
#include "runtime/auth/token.hpp"
#include "runtime/process/cgroup.hpp"
#include "runtime/process/process_list.hpp"  // data_dir_label
#include "runtime/eventlog/audit_anchor.hpp"
#include "runtime/files/fs_util.hpp"
#include "runtime/files/private_dir.hpp"
#include "runtime/process/sandbox.hpp"

namespace berth {

namespace {

struct berth_system_config : caf::actor_system_config {
  explicit berth_system_config(const config& cfg) {
    add_message_types<caf::id_block::berth>();
    add_error_category(caf::atom("berth"), [](uint8_t code, caf::atom_value, const caf::message& ctx) {
      return std::string("berth::") + code_name(static_cast<errc>(code)) +
             (ctx.empty() ? "" : caf::deep_to_string(ctx));
    });
    set("scheduler.max-threads", scheduler_threads(cfg));
    set("logger.verbosity", caf::atom("quiet"));
    // Work sharing: idle workers sleep on one condition variable until a job is queued. Work
    // stealing (CAF's default) wakes every idle worker every 10 ms to try to steal, which is
    // what an idle berth spent its CPU on; berth's actors do little work each, so one shared
    // queue is no bottleneck on the machines berth runs on.
    set("scheduler.policy", caf::atom("sharing"));
  }
  // --scheduler-threads, else one per core (CAF's own default is at least 4).
  static size_t scheduler_threads(const config& cfg) {
    if (cfg.scheduler_threads > 0) return static_cast<size_t>(cfg.scheduler_threads);
    return std::max(2u, std::thread::hardware_concurrency());
  }
};

// The Caddy binary as given, or found on PATH; "" when there is none.
std::string find_program(const std::string& name) {
  auto runnable = [](const std::string& p) { return ::access(p.c_str(), X_OK) == 0; };
  if (name.find('/') != std::string::npos) return runnable(name) ? name : "";
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  for (size_t start = 0; start <= dirs.size();) {
    auto end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    auto candidate = dirs.substr(start, end - start) + "/" + name;
    if (end > start && runnable(candidate)) return candidate;
    start = end + 1;
  }
  return "";
}

// proxy when asked for (a router must be there) or, in auto mode, when one is installed. The
// router: HAProxy unless --proxy-engine caddy or HAProxy is missing (auto). HTTPS sites need
// Caddy as their TLS front.
bool resolve_switch_mode(config& cfg) {
  auto& p = cfg.proxy;
  auto haproxy = find_program(p.haproxy);
  auto caddy = find_program(p.caddy);
  std::string engine = p.engine == "auto" ? (!haproxy.empty() ? "haproxy" : "caddy") : p.engine;
  auto binary = engine == "haproxy" ? haproxy : caddy;
  if ((p.switch_mode == "proxy" || p.engine != "auto") && p.switch_mode != "direct" && binary.empty()) {
    log_kv(spdlog::level::critical,
           p.engine == "auto" ? "proxy mode needs haproxy or caddy, and neither was found"
                              : "proxy mode needs " + engine + ", which was not found",
           {{"haproxy", p.haproxy}, {"caddy", p.caddy}});
    return false;
  }
  cfg.deploy.proxy = p.switch_mode != "direct" && !binary.empty();
  if (cfg.deploy.proxy)
    cfg.deploy.canary_unavailable = engine == "haproxy" ? ""
                                                         : "production.canary needs HAProxy as the proxy engine (Caddy "
                                                           "2.6 can neither split traffic by weight nor measure each "
                                                           "upstream)";
  if (p.tls() && !cfg.deploy.proxy) {
    log_kv(spdlog::level::critical, "--sites-tls needs proxy mode (HTTPS is served by the proxy)",
           {{"switch_mode", p.switch_mode}});
    return false;
  }
  if (p.tls() && caddy.empty()) {
    log_kv(spdlog::level::critical, "--sites-tls needs Caddy (the TLS front), which was not found",
           {{"caddy", p.caddy}});
    return false;
  }
  // The admin sockets live under the data dir, whose path must fit a sockaddr_un.
  auto proxy_dir = std::filesystem::absolute(std::filesystem::path(cfg.data_dir) / "proxy").lexically_normal();
  auto socket = std::max(caddy_admin_socket(proxy_dir.string()).size(),
                         (proxy_dir / "haproxy" / "master.sock").string().size());
  if (cfg.deploy.proxy && socket > max_admin_socket_path()) {
    log_kv(spdlog::level::critical,
           "proxy mode needs a shorter data dir path: the proxy's admin sockets would be longer than " +
               std::to_string(max_admin_socket_path()) + " bytes",
           {{"proxy_dir", proxy_dir.string()}});
    return false;
  }
  if (cfg.deploy.proxy) {
    p.engine = engine;
    p.haproxy = haproxy;
    p.caddy = caddy;
  }
  log_kv(spdlog::level::info, cfg.deploy.proxy ? "switch mode: proxy (" + engine + ")" : "switch mode: direct (no proxy)",
         {{"haproxy", haproxy.empty() ? "not installed" : haproxy},
          {"caddy", caddy.empty() ? "not installed" : caddy},
          {"requested", p.switch_mode},
          {"sites_tls", p.sites_tls}});
  return true;
}

// Whether limits can be applied here (cgroups berth may create), said once at start; without
// them berth runs apps unlimited and refuses manifests that set limits.
void resolve_limits(config& cfg) {
  auto tree = cgroup_tree::open(cfg.limits.cgroup_root, detail::data_dir_label(cfg.data_dir));
  cfg.limits.unavailable = tree->unavailable();
  cfg.limits.mode = tree->version();
  if (cfg.limits.unavailable.empty())
    log_kv(spdlog::level::info, "limits: applied with " + cfg.limits.mode,
           {{"cgroups", tree->subtree().empty() ? "" : tree->subtree().front()}});
  else
    log_kv(spdlog::level::warn, "limits: unavailable; apps run unlimited and manifests that set limits are refused",
           {{"reason", cfg.limits.unavailable}});
}

// Every build, preview and release runs sandboxed (runtime/process/sandbox.hpp) unless
// --sandbox off: bubblewrap must be there and work, else berth does not start.
bool resolve_sandbox(const config& cfg) {
  auto& sb = cfg.deploy.sandbox;
  if (!sb.enabled()) {
    log_kv(spdlog::level::warn, "sandbox: off (--sandbox off): apps and builds run as berth's own user");
    return true;
  }
  auto options = make_sandbox_options(true);
  if (auto s = check_sandbox(options, sb.uid_lo); !s) {
    log_kv(spdlog::level::critical,
           "refusing to start: the sandbox does not work here (install bubblewrap, or run with --sandbox off)",
           {{"error", s.message()}});
    return false;
  }
  log_kv(spdlog::level::info, "sandbox: bubblewrap",
         {{"identity", options.as_root ? fmt::format("a uid per project from {}-{}", sb.uid_lo, sb.uid_hi)
                                       : std::string("berth's uid in a user namespace")}});
  return true;
}

// The API token: --token / BERTH_TOKEN / config `token`, else <data>/token. On loopback that
// file is created (0600) at first start; on any other address berth never makes one up: the
// operator gives a token or creates the file, else berth does not start. Never logs the token.
bool resolve_token(config& cfg) {
  auto path = (std::filesystem::path(cfg.data_dir) / "token").string();
  if (!cfg.token.empty()) {
    log_kv(spdlog::level::info, "API token: the one given by --token, BERTH_TOKEN or the config file");
    return true;
  }
  std::string token, error;
  bool loopback = is_loopback_host(cfg.listen_host);
  auto status = loopback ? load_or_create_token_file(path, token, error) : load_token_file(path, token, error);
  switch (status) {
    case token_file_status::loaded:
      log_kv(spdlog::level::info, "API token: read from the token file", {{"file", path}});
      break;
    case token_file_status::created:
      log_kv(spdlog::level::info,
             "API token: created the token file (mode 0600); API clients send its content as "
             "'Authorization: Bearer <token>'",
             {{"file", path}});
      break;
    case token_file_status::missing:
      log_kv(spdlog::level::critical,
             "refusing to start: berth listens on a non-loopback address and has no API token. Give one "
             "with --token, BERTH_TOKEN or the config key 'token', or create the token file yourself "
             "(mode 0600)",
             {{"listen", cfg.listen_host + ":" + std::to_string(cfg.listen_port)}, {"file", path}});
      return false;
    case token_file_status::refused:
      log_kv(spdlog::level::critical, "refusing to start: " + error, {{"file", path}});
      return false;
  }
  cfg.token = std::move(token);
  return true;
}

// Behind the proxy, the shared listeners' ports are part of every site's address, so they are
// fixed before anything reports one: the ones given, else the ones the log says the proxy used
// last (an adopted proxy keeps serving there), else free ones.
void resolve_site_port(config& cfg, const event_log& log) {
  std::vector<event_record> events;
  proxy_record rec;
  if (log.read_stream(proxy_stream, 1, 0, &events))
    for (auto& e : events) fold(rec, e);
  auto pick = [](uint16_t& port, uint16_t last) {
    if (port == 0) port = last != 0 ? last : free_loopback_port();
  };
  auto& p = cfg.proxy;
  pick(p.http_port, rec.http_port);
  if (p.tls()) {
    pick(p.https_port, rec.https_port);
    pick(p.inner_port, rec.inner_port);
    pick(p.ask_port, rec.ask_port);
    cfg.deploy.site.scheme = "https";
    cfg.deploy.site.port = p.https_port == 443 ? 0 : p.https_port;
  } else {
    cfg.deploy.site.port = p.http_port;
  }
  log_kv(spdlog::level::info, "sites", {{"url", site_url(cfg.deploy.site, "<name>", site_env::production)}});
}

// The data dir holds the token, every project's secrets and the log: only berth's user may
// enter it. Made 0700 when missing; an existing one of berth's user with wider modes (every
// install before this check made it 0755) is tightened, with a log line; one that belongs to
// another user is refused, as the token file is.
bool secure_data_dir(const config& cfg, bool create) {
  std::error_code ec;
  if (!create && !std::filesystem::exists(cfg.data_dir, ec)) return true;  // made later, after the checks
  private_dir_result r;
  if (auto s = secure_private_dir(cfg.data_dir, &r); !s) {
    log_kv(spdlog::level::critical, "refusing to start: the data dir is not berth's own: " + s.message(),
           {{"data", cfg.data_dir}});
    return false;
  }
  if (r.tightened)
    log_kv(spdlog::level::warn, "data dir was readable by others: tightened to 0700",
           {{"data", cfg.data_dir}, {"was", octal_mode(r.was)}});
  return true;
}

// The key that signs the log's head: --audit-key, else the default path; created at first
// start; never inside the data dir (whatever can write there must not be able to sign).
std::shared_ptr<log_checkpointer> resolve_audit_key(config& cfg) {
  if (cfg.audit_key.empty()) cfg.audit_key = default_audit_key_path();
  namespace fs = std::filesystem;
  std::error_code ec;
  auto key = fs::weakly_canonical(fs::absolute(cfg.audit_key), ec);
  auto data = fs::weakly_canonical(fs::absolute(cfg.data_dir), ec);
  if (fsutil::inside(data, key)) {
    log_kv(spdlog::level::critical,
           "refusing to start: the audit key must be kept outside the data dir (anything that can write the data "
           "dir could then sign a rewritten log)",
           {{"audit_key", cfg.audit_key}, {"data", cfg.data_dir}});
    return nullptr;
  }
  audit_key k;
  bool created = false;
  if (auto s = audit_key::load_or_create(cfg.audit_key, &k, &created); !s) {
    log_kv(spdlog::level::critical, "refusing to start: " + s.message(), {{"audit_key", cfg.audit_key}});
    return nullptr;
  }
  log_kv(spdlog::level::info, created ? "audit key: created (mode 0600)" : "audit key: loaded",
         {{"audit_key", cfg.audit_key}, {"key_id", k.key_id()}, {"checkpoint_every", cfg.audit_checkpoint_every}});
  return std::make_shared<log_checkpointer>(std::move(k), cfg.audit_checkpoint_every);
}

// SIGTERM: every running deploy ends at its next phase boundary (recorded `interrupted` and
// compensated; after --shutdown-grace-ms its phase is cancelled), so the log is complete
// before berth exits. Apps keep running unless --stop-apps-on-exit.
void let_jobs_reach_a_boundary(caf::actor_system& sys, const config& cfg) {
  auto projects = names::whereis(sys, names::projects);
  if (!projects) return;
  auto started = std::chrono::steady_clock::now();
  auto grace = static_cast<uint32_t>(cfg.shutdown_grace_ms);
  {
    caf::scoped_actor self{sys};  // gone before await_all_actors_done, which would wait for it
    self->request(projects, std::chrono::milliseconds(grace) + std::chrono::seconds(45), shutdown_atom_v,
                  cfg.stop_apps_on_exit, grace)
        .receive([](bool) {},
                 [](caf::error& err) {
                   log_kv(spdlog::level::warn, "projects did not all stop cleanly", {{"error", caf::to_string(err)}});
                 });
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  log_kv(spdlog::level::info, "running jobs stopped at a phase boundary",
         {{"ms", ms.count()}, {"apps", cfg.stop_apps_on_exit ? "stopped" : "left running"}});
}

// glibc gives each thread that allocates an arena of its own, up to 8 per core, each keeping
// the memory it freed: most of an idle berth's heap. Two arenas are enough for berth's
// allocation rate; freed memory at the top of the heap goes back to the kernel past 128 KiB.
void limit_malloc_arenas() {
  ::mallopt(M_ARENA_MAX, 2);
  ::mallopt(M_TRIM_THRESHOLD, 128 * 1024);
}

int serve(const config& given) {
  limit_malloc_arenas();  // before any thread allocates
  config cfg = given;
  // Everything berth creates from here on (folders, .env, logs, RocksDB's files, Caddy's socket)
  // is its user's alone.
  ::umask(077);
  setup_logging(cfg.log_format, cfg.log_level);
  // Before anything is created or listens: a refused start leaves no trace.
  if (!secure_data_dir(cfg, false)) return 1;
  auto checkpointer = resolve_audit_key(cfg);
  if (!checkpointer) return 1;
  if (!resolve_token(cfg)) return 1;
  if (!http::check_listen_security(cfg)) return 1;
  if (!resolve_switch_mode(cfg)) return 1;
  if (!resolve_sandbox(cfg)) return 1;
  // Signals are taken by sigwait below; block them before any thread exists.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  if (!secure_data_dir(cfg, true)) return 1;
  std::error_code ec;
  std::filesystem::create_directories(projects_root(cfg.data_dir), ec);
  if (ec) {
    log_kv(spdlog::level::critical, "cannot create the data dir", {{"data", cfg.data_dir}, {"error", ec.message()}});
    return 1;
  }
  // Before the log opens: on a full disk the reserve makes room for RocksDB to start.
  set_app_log_rotation({static_cast<uint64_t>(cfg.log_max_bytes), cfg.log_max_files});
  uint64_t reserve = static_cast<uint64_t>(cfg.disk_reserve_mb) << 20;
  disk_guard::install(cfg.data_dir, reserve, std::max<uint64_t>(reserve / 4, 1 << 20));
  std::unique_ptr<event_log> opened;
  if (auto s = event_log::open(event_log_dir(cfg.data_dir).string(), event_log::mode::read_write, &opened); !s) {
    log_kv(spdlog::level::critical, "cannot open the event log", {{"error", s.message()}});
    return 1;
  }
  std::shared_ptr<event_log> log{std::move(opened)};
  log_kv(spdlog::level::info, "event log open", {{"data", cfg.data_dir}, {"last_seq", log->last_seq()}});
  if (cfg.deploy.proxy) resolve_site_port(cfg, *log);
  resolve_limits(cfg);

  // Before the actor system: whatever records into it may outlive the tree's actors.
  auto metrics = std::make_shared<berth_metrics>(BERTH_VERSION);
  berth_system_config sys_cfg{cfg};
  caf::actor_system sys{sys_cfg};
  // The read model of every project, loaded before the tree (projects answer from it at once).
  auto project_index = open_project_index(cfg, log);
  auto root = start_tree(sys, cfg, log, checkpointer, metrics, project_index);
  // If the root supervisor gives up, berth cannot work: exit non-zero so whatever runs berth
  // restarts it, and the new process rebuilds everything from the log.
  static std::atomic<bool> root_failed{false};
  root->attach_functor([](const caf::error& reason) {
    if (reason && reason != caf::exit_reason::user_shutdown) {
      root_failed = true;
      ::kill(::getpid(), SIGTERM);
    }
  });

  http::server api{sys, cfg, metrics.get()};
  std::string bind_error;
  if (!api.bind(bind_error)) {
    log_kv(spdlog::level::critical, bind_error);
    caf::anon_send_exit(root, caf::exit_reason::user_shutdown);
    return 1;
  }
  std::thread http_thread{[&] { api.run(); }};
  log_kv(spdlog::level::info, "berth serving",
         {{"listen", cfg.listen_host + ":" + std::to_string(cfg.listen_port)}, {"version", BERTH_VERSION}});

  int sig = 0;
  sigwait(&signals, &sig);
  log_kv(spdlog::level::info, "stopping", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
  api.stop();
  http_thread.join();
  let_jobs_reach_a_boundary(sys, cfg);
  caf::anon_send_exit(root, caf::exit_reason::user_shutdown);
  sys.await_all_actors_done();
  project_index->snapshot_now();  // every writer has stopped: the next start folds no tail
  // Every writer has stopped: the head as it is now is signed, so a later rewrite of any of it is
  // detected (nothing is appended when nothing happened since the last checkpoint).
  bool appended = false;
  if (auto s = checkpointer->final_checkpoint(*log, &appended); !s)
    log_kv(spdlog::level::warn, "the shutdown checkpoint was not appended", {{"error", s.message()}});
  else if (appended)
    log_kv(spdlog::level::info, "log head signed", {{"last_seq", log->last_seq()}});
  if (root_failed) {
    log_kv(spdlog::level::critical, "the root supervisor gave up; exiting");
    return 1;
  }
  log_kv(spdlog::level::info, "stopped");
  return 0;
}

}  // namespace

void register_serve(CLI::App& app) {
  auto cfg = std::make_shared<config>();
  auto loader = std::make_shared<config_loader>(*cfg);
  auto* cmd = app.add_subcommand("serve", "run the berth server (actor tree + HTTP control endpoint)");
  loader->add_options(*cmd);
  cmd->callback([cfg, loader] {
    loader->resolve();
    int rc = serve(*cfg);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace berth
