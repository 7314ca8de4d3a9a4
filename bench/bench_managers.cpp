// bench_managers: berth against pm2 and supervisord (and the bare fork/exec of the bench
// itself) on the same machine, in the same run, with the same apps (issue 17's harness).
//
// Figures (runs alternate between the managers; medians over --runs):
//   start N apps until all answer   berth: N POST preview/start, --parallel (12) at a time (the
//                                   projects created beforehand, not timed); pm2: `pm2 start`
//                                   of one ecosystem file with the N apps; supervisord:
//                                   `supervisorctl start <group>:*` of N [program:x]; bare: N
//                                   fork/exec by the bench. Each from the first call until
//                                   every app has answered GET /health on its port. The
//                                   daemons run beforehand (not timed), as berth's does.
//   daemon RSS with N apps running  berth's process / pm2's God daemon / supervisord, MB.
//   app SIGKILLed → answering again the process listening on one app's port (the app itself,
//                                   inside berth's sandbox too) is SIGKILLed; ms until its port
//                                   answers again from a new process. Beside it, subject
//                                   "bare": the app's own boot (fork/exec to first answer).
//   failed requests / p99 while switching production under load
//                                   berth in proxy mode deploying a node app (--switches per
//                                   run) vs `pm2 reload` of the same app in cluster mode (pm2's
//                                   best case), while new-connection and kept-alive GET clients
//                                   (tests/integration/traffic_support) hit the app's port.
// Apps: native (bench/apps/tiny_http, the headline), python (bench/apps/release_server.py),
// node (bench/apps/tiny_node.js, the switch). berth runs with its sandbox on.
//
// Usage: bench_managers [--apps 100] [--runs 5] [--parallel 12] [--kinds native,python]
//                       [--switches 3] [--no-switch] [--quick] [--json FILE] [--timeout-s 1800]
//                       [--berth PATH] [--pm2 PATH] [--supervisord PATH] [--supervisorctl PATH]
//                       [--python PATH] [--node PATH] [--dir PARENT] [--keep]
// pm2 comes from scripts/install-bench-deps.sh (<build>/bench-peers); the bench fails with a
// clear message when a peer is missing.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bench/common/bench_session.hpp"
#include "bench/common/managers_apps.hpp"
#include "bench/common/managers_berth.hpp"
#include "bench/common/managers_peers.hpp"
#include "bench/common/managers_report.hpp"
#include "bench/common/managers_switch.hpp"

#ifndef BERTH_BINARY
#define BERTH_BINARY ""
#endif
#ifndef BENCH_TINY_HTTP
#define BENCH_TINY_HTTP ""
#endif
#ifndef BENCH_PM2
#define BENCH_PM2 ""
#endif

namespace {

namespace fs = std::filesystem;
namespace bb = berth::bench;
using bb::app_kind;
using bb::managed_app;
using steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct params {
  int apps = 100, runs = 5, parallel = 12, switches = 3, boot_samples = 15;
  std::vector<std::string> kinds = {"native", "python"};
  bool do_switch = true, quick = false, keep = false;
  std::string json_file, dir;
  int timeout_s = 1800;
  std::string berth = BERTH_BINARY, pm2 = BENCH_PM2, supervisord = "/usr/bin/supervisord",
              supervisorctl = "/usr/bin/supervisorctl";
  bb::app_programs progs;
};

params parse(int argc, char** argv) {
  params p;
  p.progs.tiny_http = BENCH_TINY_HTTP;
  const char* tmp = std::getenv("TMPDIR");
  p.dir = tmp && *tmp ? tmp : "/tmp";
  CLI::App app{"bench_managers: berth against pm2 and supervisord (start, RSS, SIGKILL, switch under load)"};
  bool no_switch = false;
  app.add_option("--apps", p.apps, "apps per manager")->check(CLI::Range(1, 500));
  app.add_option("--runs", p.runs, "runs (alternating between the managers)")->check(CLI::Range(1, 100));
  app.add_option("--parallel", p.parallel, "berth: preview/start calls at a time")->check(CLI::Range(1, 64));
  app.add_option("--kinds", p.kinds, "apps started: native,python")->delimiter(',')->check(CLI::IsMember({"native", "python"}));
  app.add_option("--switches", p.switches, "deploys / reloads per switch run")->check(CLI::Range(1, 100));
  app.add_flag("--no-switch", no_switch, "skip the switch under load");
  app.add_flag("--quick", p.quick, "10 apps, 2 runs, native only, 1 switch per run (< 60 s)");
  app.add_option("--json", p.json_file, "write the rows (shared bench format) to this file");
  app.add_option("--timeout-s", p.timeout_s, "overall time limit")->check(CLI::Range(10, 86400));
  app.add_option("--berth", p.berth, "berth binary");
  app.add_option("--pm2", p.pm2, "pm2 CLI (scripts/install-bench-deps.sh installs it)");
  app.add_option("--supervisord", p.supervisord, "supervisord");
  app.add_option("--supervisorctl", p.supervisorctl, "supervisorctl");
  app.add_option("--tiny-http", p.progs.tiny_http, "bench/apps/tiny_http binary");
  app.add_option("--python", p.progs.python, "python3 for the python app (visible in the sandbox)");
  app.add_option("--node", p.progs.node, "node for the node app");
  app.add_option("--dir", p.dir, "parent of the temp dir");
  app.add_flag("--keep", p.keep, "keep the temp dir");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e));
  }
  p.do_switch = !no_switch;
  if (p.quick) {
    p.apps = std::min(p.apps, 10);
    p.runs = std::min(p.runs, 2);
    p.kinds = {"native"};
    p.switches = 1;
    p.boot_samples = 5;
  }
  return p;
}

bb::session g_session{"bench_managers"};
[[noreturn]] void fail(const std::string& what, const std::string& extra = "") { g_session.fail(what, extra); }

app_kind kind_of(const std::string& k) { return k == "python" ? app_kind::python : app_kind::native; }

// The managers as the runs see them: launch all apps, the daemon's pid, stop all apps.
struct subject {
  std::string name;
  std::vector<managed_app> apps;
  std::function<pid_t()> launch;      // starts every app; the launcher's pid when it is a child
  std::function<std::string()> join;  // waits for the launcher: "" or what failed
  std::function<pid_t()> daemon;      // -1: no daemon (bare)
  std::function<std::string()> stop;  // "" or what failed
  bool restarts = true;               // keeps an app running (bare does not)
  std::vector<uint16_t> ports() const {
    std::vector<uint16_t> v;
    for (auto& a : apps) v.push_back(a.port);
    return v;
  }
};

// SIGKILL of the process listening on `port`; ms until the port answers from another process.
double sigkill_ms(uint16_t port, std::string* why) {
  pid_t old = bb::listener_pid(port);
  if (old <= 0) {
    *why = "nothing listens on " + std::to_string(port);
    return NAN;
  }
  auto t0 = steady::now();
  ::kill(old, SIGKILL);
  while (steady::now() - t0 < 30s) {
    if (bb::answers(port, 300ms)) {
      double ms = std::chrono::duration<double, std::milli>(steady::now() - t0).count();
      pid_t now = bb::listener_pid(port);
      if (now > 0 && now != old) return ms;
    }
    std::this_thread::sleep_for(200us);
  }
  *why = "not answering again within 30 s";
  return NAN;
}

std::string pad3(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%03d", i);
  return buf;
}

// N app folders of `kind` under <dir>/apps/<set>, named <prefix>NNN, on `ports` (may be empty).
std::vector<managed_app> make_apps(const params& p, const std::string& dir, const std::string& set,
                                   const std::string& prefix, app_kind kind, const std::vector<uint16_t>& ports) {
  std::vector<managed_app> apps;
  for (int i = 0; i < p.apps; ++i) {
    managed_app a;
    a.name = prefix + pad3(i + 1);
    a.dir = dir + "/apps/" + set + "/" + a.name;
    a.argv = bb::write_app(kind, p.progs, a.dir, a.name);
    a.port = ports.empty() ? 0 : ports[i];
    apps.push_back(std::move(a));
  }
  return apps;
}

}  // namespace

int main(int argc, char** argv) {
  auto p = parse(argc, argv);
  for (auto& [what, path] : std::vector<std::pair<std::string, std::string>>{
           {"berth", p.berth}, {"tiny_http", p.progs.tiny_http}, {"pm2", p.pm2}, {"supervisord", p.supervisord},
           {"supervisorctl", p.supervisorctl}, {"python", p.progs.python}, {"node", p.progs.node}})
    if (path.empty() || ::access(path.c_str(), X_OK) != 0) {
      std::fprintf(stderr, "bench_managers: %s not found at '%s' (peers: run scripts/install-bench-deps.sh BUILD-DIR)\n",
                   what.c_str(), path.c_str());
      return 2;
    }
  g_session.guard(std::chrono::seconds(p.timeout_s));
  std::mt19937 rng(std::random_device{}());
  const std::string dir = g_session.open_dir(p.dir, p.keep);
  std::printf("bench_managers: %d apps, %d runs, kinds %s, dir %s, load %s\n", p.apps, p.runs,
              [&] { std::string s; for (auto& k : p.kinds) s += (s.empty() ? "" : ",") + k; return s; }().c_str(),
              dir.c_str(), bb::loadavg().c_str());
  std::fflush(stdout);

  // ---- the managers, their daemons started and their apps written (not timed) ----
  bb::berth_manager berth(g_session, p.berth, dir);
  berth.start("data", {}, false);
  bb::pm2_manager pm2(p.pm2, dir + "/pm2");
  if (auto e = pm2.start_daemon(); !e.empty()) fail("pm2: " + e, pm2.log_tail());
  bb::supervisord_manager sup(p.supervisord, p.supervisorctl, dir + "/supervisord");

  // Ports for the peers and bare: below the ephemeral range, so no client socket holds one.
  const int per_kind = 3 * p.apps;
  auto ports = bb::free_port_block(per_kind * static_cast<int>(p.kinds.size()) + 1, 20000, 32000, rng());
  if (ports.empty()) fail("no free block of ports in 20000-32000");
  std::map<std::string, std::vector<subject>> by_kind;
  std::map<std::string, std::vector<managed_app>> sup_groups;
  for (size_t k = 0; k < p.kinds.size(); ++k) {
    auto kind = kind_of(p.kinds[k]);
    auto slice = [&](int which) {
      auto from = ports.begin() + static_cast<long>(k * per_kind + which * p.apps);
      return std::vector<uint16_t>(from, from + p.apps);
    };
    const std::string kn = p.kinds[k];
    auto berth_apps = make_apps(p, dir, "berth-" + kn, kn + "-", kind, {});  // projects: before the kind's runs
    auto pm2_apps = make_apps(p, dir, "pm2-" + kn, "pm2-" + kn + "-", kind, slice(0));
    auto sup_apps = make_apps(p, dir, "supervisord-" + kn, "sup-" + kn + "-", kind, slice(1));
    auto bare_apps = make_apps(p, dir, "bare-" + kn, "bare-" + kn + "-", kind, slice(2));
    sup_groups[kn] = sup_apps;
    std::string eco = pm2.write_ecosystem(kn, pm2_apps);
    auto& subjects = by_kind[kn];

    subject b{"berth", berth_apps};
    auto result = std::make_shared<std::string>();
    auto worker = std::make_shared<std::thread>();
    b.launch = [&berth, &p, apps = berth_apps, result, worker] {
      *worker = std::thread([&berth, &p, apps, result] { *result = berth.preview_all(apps, "start", p.parallel); });
      return -1;
    };
    b.join = [result, worker] {
      worker->join();
      return *result;
    };
    b.daemon = [&berth] { return berth.daemon_pid(); };
    b.stop = [&berth, &p, apps = berth_apps] { return berth.preview_all(apps, "stop", p.parallel); };
    subjects.push_back(b);

    subject m{"pm2", pm2_apps};
    auto cli = std::make_shared<pid_t>(-1);
    m.launch = [&pm2, eco, cli] { return *cli = pm2.start_async(eco); };
    m.join = [&pm2, cli] {
      int rc = bb::wait_child(*cli, 120s);
      return rc == 0 ? std::string() : "pm2 start exited " + std::to_string(rc) + "\n" + pm2.log_tail();
    };
    m.daemon = [&pm2] { return pm2.daemon_pid(); };
    m.stop = [&pm2, eco] {
      std::string out;
      return pm2.run({"delete", eco}, &out) == 0 ? std::string() : "pm2 delete: " + out;
    };
    subjects.push_back(m);

    subject s{"supervisord", sup_apps};
    auto ctl = std::make_shared<pid_t>(-1);
    s.launch = [&sup, kn, ctl] { return *ctl = sup.start_group_async(kn); };
    s.join = [&sup, ctl] {
      int rc = bb::wait_child(*ctl, 120s);
      return rc == 0 ? std::string() : "supervisorctl start exited " + std::to_string(rc) + "\n" + sup.log_tail();
    };
    s.daemon = [&sup] { return sup.daemon_pid(); };
    s.stop = [&sup, kn] {
      std::string out;
      return sup.ctl({"stop", kn + ":*"}, &out) == 0 ? std::string() : "supervisorctl stop: " + out;
    };
    subjects.push_back(s);

    subject x{"bare", bare_apps};
    auto procs = std::make_shared<bb::bare_apps>();
    x.launch = [procs, apps = bare_apps] {
      std::vector<std::string> dirs;
      std::vector<std::vector<std::string>> argvs;
      std::vector<uint16_t> ps;
      for (auto& a : apps) dirs.push_back(a.dir), argvs.push_back(a.argv), ps.push_back(a.port);
      procs->start(dirs, argvs, ps);
      return -1;
    };
    x.join = [] { return std::string(); };
    x.daemon = [] { return -1; };
    x.stop = [procs] {
      procs->stop();
      return std::string();
    };
    x.restarts = false;
    subjects.push_back(x);
  }
  if (auto e = sup.start(sup_groups); !e.empty()) fail("supervisord: " + e);

  // ---- start / RSS / SIGKILL, runs alternating between the managers ----
  bb::figure_table table;
  const std::string n = std::to_string(p.apps);
  const std::string start_fig = "start " + n + " apps until all answer", rss_fig = "daemon RSS with " + n + " apps running",
                    kill_fig = "app SIGKILLed → answering again";
  for (auto& kn : p.kinds) {
    auto& subjects = by_kind[kn];
    // berth holds only this kind's projects while it is measured (idle projects cost memory).
    berth.create_previews(subjects.front().apps);
    for (int run = 0; run < p.runs; ++run) {
      for (size_t j = 0; j < subjects.size(); ++j) {
        auto& s = subjects[(j + run) % subjects.size()];
        auto ps = s.ports();
        auto t0 = steady::now();
        s.launch();
        double secs = bb::wait_all_answer(ps, t0, t0 + 120s);
        if (auto e = s.join(); !e.empty()) fail(s.name + " " + kn + ": " + e);
        if (std::isnan(secs)) fail(s.name + " " + kn + ": not every app answered within 120 s");
        table.add(start_fig, s.name, kn, "s", secs, s.name == "berth" ? "<= 0.9 s" : "");
        if (pid_t d = s.daemon(); d > 0) table.add(rss_fig, s.name, kn, "MB", bb::rss_mb(d), s.name == "berth" ? "<= 20 MB" : "");
        double kill = NAN;
        if (s.restarts) {
          std::string why;
          kill = sigkill_ms(ps[static_cast<size_t>(run) % ps.size()], &why);
          table.add(kill_fig, s.name, kn, "ms", kill, s.name == "berth" ? "<= boot + 5 ms" : "");
          if (!why.empty()) table.note(kill_fig, s.name, kn, why);
        }
        if (auto e = s.stop(); !e.empty()) fail(s.name + " " + kn + " stop: " + e);
        if (!bb::wait_none_answer(ps, steady::now() + 30s)) {
          // The manager said every app stopped, yet some answer: a user would notice, so it is
          // reported (on the start row) and the leftovers are killed so the next runs are fair.
          std::string left;
          for (auto& a : s.apps)
            if (bb::answers(a.port, 300ms)) {
              left += (left.empty() ? "" : " ") + a.name;
              if (pid_t l = bb::listener_pid(a.port); l > 0) ::kill(l, SIGKILL);
            }
          table.note(start_fig, s.name, kn, "run " + std::to_string(run + 1) + ": still answering 30 s after the stop: " + left);
          std::printf("  run %d %s %s: still answering 30 s after the stop: %s\n", run + 1, s.name.c_str(), kn.c_str(), left.c_str());
          if (!bb::wait_none_answer(ps, steady::now() + 10s)) fail(s.name + " " + kn + ": apps still answer after SIGKILL: " + left);
        }
        std::printf("  run %d %-11s %-6s start %.3f s, SIGKILLed app answering again after %.1f ms\n", run + 1,
                    s.name.c_str(), kn.c_str(), secs, kill);
        std::fflush(stdout);
      }
    }
    if (auto e = berth.delete_all(subjects.front().apps); !e.empty()) fail("berth: " + e);
    // The app's own boot beside the restarts: fork/exec by the bench to first answer.
    auto& bare = subjects.back();
    for (int i = 0; i < std::max(p.boot_samples, p.runs); ++i)
      table.add(kill_fig, "bare", kn, "ms", bb::boot_ms(bare.apps[0].dir, bare.apps[0].argv, bare.apps[0].port));
    table.note(kill_fig, "bare", kn, "the app's own boot: fork/exec by the bench until it answers");
  }
  table.note(start_fig, "berth", p.kinds[0], "POST preview/start, " + std::to_string(p.parallel) + " at a time, sandbox on");
  table.note(start_fig, "supervisord", p.kinds[0], "supervisorctl start <group>:* (startsecs=1, the default)");

  // ---- the switch under load: berth proxy mode vs pm2 reload (cluster mode) ----
  if (p.do_switch) {
    berth.kill();
    // --drain-ms 1000: the old release gets about what pm2 gives it (kill_timeout 1.6 s) instead
    // of berth's default 30 s, which only makes each deploy (and the run) longer.
    berth.start("data-proxy",
                {"--switch-mode", "proxy", "--proxy-http-port", std::to_string(bb::free_port()), "--drain-ms", "1000"},
                true);
    bb::switch_params sp{p.runs, p.switches, p.progs.node};
    bb::run_switch(g_session, berth, pm2, dir + "/switch", ports.back(), sp, table);
  }

  pm2.shutdown();
  sup.shutdown();
  g_session.final_cleanup();
  table.print();
  if (!p.json_file.empty()) {
    std::ofstream out(p.json_file);
    out << table.to_json("bench_managers").dump(2) << "\n";
    if (!out) {
      std::fprintf(stderr, "bench_managers: cannot write %s\n", p.json_file.c_str());
      return 1;
    }
    std::printf("rows written to %s\n", p.json_file.c_str());
  }
  return 0;
}
