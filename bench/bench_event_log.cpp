// bench_event_log: durable append and replay throughput of berth's event log.
//
//   (a) sync_single   one event per append, sync=true (one fsync per event), 1 thread
//   (b) group_commit  8 writers through the event_store actor, 1 event (~200 B) per append,
//                     each writer waits for its reply before the next append
//   (b2) group_pipe   same, but each writer keeps `--window` appends in flight (many
//                     actors appending at once, as in the server)
//   (c) replay        load_replay() over `--replay` events with no snapshot: every event
//                     decoded and folded with log_replay::fold (filled with sync=false, then
//                     reopened so they are read from SST files)
//   (c2) replay_snapshot  a restart: the log reopened and load_replay() with a snapshot taken
//                     at 99% of the log (snapshot decoded, its hash checked, the tail folded)
//   (d) verify        verify() over the same events (every hash recomputed, links, index)
// Each measurement runs `--runs` times; the median is reported. `--json FILE` writes the rows
// in the shared bench format (bench/README.md).
//
// Usage: bench_event_log [--runs 3] [--single 1000] [--writers 8] [--per-writer 1000]
//                        [--window 16] [--replay 200000] [--data 200] [--linger-us 500]
//                        [--dir /tmp] [--json FILE]
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <caf/all.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "actors/event_store.hpp"
#include "messages/atoms.hpp"
#include "messages/deployment.hpp"
#include "messages/project_state.hpp"
#include <fmt/format.h>
#include "runtime/eventlog/event_log.hpp"
#include "runtime/eventlog/replay_load.hpp"

using namespace berth;
using clk = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

struct params {
  int runs = 3;
  int single = 1000;
  int writers = 8;
  int per_writer = 1000;
  int window = 16;
  int replay = 200000;
  int data = 200;
  int linger_us = static_cast<int>(event_store_state::default_max_linger.count());
  std::string dir = "/tmp";
  std::string json;  // --json FILE: rows in the shared format
  int snapshot = 1;  // --snapshot 0: no replay_snapshot measure
};

[[noreturn]] void usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s [--runs N] [--single N] [--writers N] [--per-writer N] [--window N]\n"
               "          [--replay N] [--data BYTES] [--linger-us N] [--dir PARENT] [--json FILE]\n"
               "          [--snapshot 0|1]\n",
               argv0);
  std::exit(2);
}

params parse(int argc, char** argv) {
  params p;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") usage(argv[0]);
    if (i + 1 >= argc) usage(argv[0]);
    std::string v = argv[++i];
    if (a == "--dir") {
      p.dir = v;
      continue;
    }
    if (a == "--json") {
      p.json = v;
      continue;
    }
    int n = std::atoi(v.c_str());
    if (n < 0) usage(argv[0]);
    if (a == "--runs") p.runs = std::max(1, n);
    else if (a == "--single") p.single = n;
    else if (a == "--writers") p.writers = std::max(1, n);
    else if (a == "--per-writer") p.per_writer = n;
    else if (a == "--window") p.window = std::max(1, n);
    else if (a == "--replay") p.replay = n;
    else if (a == "--data") p.data = n;
    else if (a == "--linger-us") p.linger_us = n;
    else if (a == "--snapshot") p.snapshot = n;
    else usage(argv[0]);
  }
  return p;
}

struct temp_dir {
  std::string path;
  explicit temp_dir(const std::string& parent) {
    std::string tmpl = parent + "/berth-bench-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (mkdtemp(buf.data()) == nullptr) {
      std::perror("mkdtemp");
      std::exit(1);
    }
    path = buf.data();
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::unique_ptr<event_log> open_log(const std::string& dir) {
  std::unique_ptr<event_log> log;
  auto st = event_log::open(dir, event_log::mode::read_write, &log);
  if (!st) {
    std::fprintf(stderr, "open %s: %s\n", dir.c_str(), st.message().c_str());
    std::exit(1);
  }
  return log;
}

// A JSON object of about `size` bytes.
std::string payload(int size, int i) {
  std::string head = R"({"project":"shop","phase":"building","i":)" + std::to_string(i) +
                     R"(,"message":")";
  std::string s = head;
  int pad = std::max(0, size - static_cast<int>(head.size()) - 2);
  s.append(static_cast<size_t>(pad), 'x');
  s += "\"}";
  return s;
}

double seconds_since(clk::time_point t0) {
  return std::chrono::duration<double>(clk::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// The events of real projects, in the shapes berth writes them: each project is created, then
// deployed again and again (queued, the phases, the release packaged and activated, the pruning
// of the oldest release), so every event is one a fold reads. `i` is the event's index in a
// fresh log (its seq is i + 1); `projects` streams take turns.
struct project_story {
  std::vector<uint64_t> queued_seq;  // per project: the seq of its deployment running now
  std::vector<int> deploys;          // per project: deployments so far
  explicit project_story(int projects) : queued_seq(projects, 0), deploys(projects, 0) {}

  new_event next(int i, int projects) {
    int j = i % projects;
    int k = i / projects;  // the project's k-th event
    std::string name = "p" + std::to_string(j), stream = "project/" + name;
    if (k == 0) {
      manifest m;
      m.name = name;
      m.source_path = "/srv/" + name;
      m.build_command = {"npm", "ci"};
      m.production_command = {"node", "server.js"};
      m.preview_command = {"npm", "run", "dev"};
      m.env = {{"NODE_ENV", "production"}, {"LOG_LEVEL", "info"}};
      return {stream, ev::project_created, project_created_data(m, uint16_t(10000 + j), uint16_t(21000 + j))};
    }
    static const phase steps[] = {phase::preparing, phase::building, phase::packaging, phase::starting,
                                  phase::health_checking, phase::switching, phase::draining, phase::completed};
    int step = (k - 1) % 12;
    auto id = name + "." + std::to_string(queued_seq[j]);
    auto hash = [&](int d) { return fmt::format("{:012x}", (static_cast<uint64_t>(j) << 20) + d); };
    int d = deploys[j];
    if (step == 0) {
      queued_seq[j] = static_cast<uint64_t>(i) + 1;
      ++deploys[j];
      return {stream, event_type(phase::queued), deployment_queued_data({"", job_kind::deploy, false, "", {}})};
    }
    if (step <= 8) {
      auto p = steps[step - 1];
      nlohmann::json res = nlohmann::json::object();
      if (p == phase::packaging) res = {{"hash", hash(d)}, {"files", 1834}, {"bytes", 48211003}};
      if (p == phase::starting) res = {{"port", 21000 + j}, {"pid", 4000 + d}, {"instance", "process:" + hash(d)}};
      if (p == phase::switching) res = {{"gap_ms", 0}, {"gap_us", 212}};
      return {stream, event_type(p), phase_event_data(id, std::string("phase ") + to_string(p), res)};
    }
    if (step == 9)
      return {stream, ev::release_packaged, dump_json({{"hash", hash(d)}, {"deployment", id}})};
    if (step == 10)
      return {stream, ev::release_activated,
              dump_json({{"hash", hash(d)}, {"deployment", id}, {"kind", "deploy"}, {"previous", d > 1 ? hash(d - 1) : ""},
                         {"instance", "process:" + hash(d)}, {"pid", 4000 + d}, {"port", 10000 + j}})};
    return {stream, ev::release_pruned, dump_json({{"hash", d > 5 ? hash(d - 5) : "0"}, {"reason", "retention"}})};
  }
};

struct result {
  std::string name;
  std::string what;
  std::vector<double> rates;  // events/s per run
  std::string extra;          // extra JSON fields (",\"k\":v")
  std::string figure;         // the issue's row name ("" = not a row of the report)
  std::string target;         // e.g. ">= 50000 events/s"
};

void fail(const std::string& what) {
  std::fprintf(stderr, "bench failed: %s\n", what.c_str());
  std::exit(1);
}

// (a) one fsync per event.
result bench_single(const params& p) {
  result r{"sync_single", "durable appends, 1 event per append, 1 thread", {}, {}};
  for (int run = 0; run < p.runs; ++run) {
    temp_dir tmp(p.dir);
    auto log = open_log(tmp.path + "/events");
    std::vector<event_record> out;
    auto t0 = clk::now();
    for (int i = 0; i < p.single; ++i) {
      std::vector<new_event> evs{{"project/shop", "phase", payload(p.data, i)}};
      auto st = log->append(evs, true, &out);
      if (!st) fail(st.message());
    }
    r.rates.push_back(p.single / seconds_since(t0));
  }
  return r;
}

// (b) 8 writers through the event_store actor; `window` appends in flight per writer.
result bench_group(const params& p, int window) {
  result r{window == 1 ? "group_commit" : "group_pipe",
           std::to_string(p.writers) + " writers via event_store, 1 event per append, " +
               std::to_string(window) + " in flight per writer",
           {},
           {}};
  std::vector<double> per_commit;
  for (int run = 0; run < p.runs; ++run) {
    temp_dir tmp(p.dir);
    std::shared_ptr<event_log> log = open_log(tmp.path + "/events");
    caf::actor_system_config cfg;
    cfg.add_message_types<caf::id_block::berth>();
    caf::actor_system sys{cfg};
    auto store = spawn_event_store(sys, log, std::chrono::microseconds(p.linger_us));
    std::vector<std::thread> threads;
    std::vector<std::string> errors(p.writers);
    auto t0 = clk::now();
    for (int w = 0; w < p.writers; ++w) {
      threads.emplace_back([&, w] {
        caf::scoped_actor self{sys};
        std::string stream = "project/w" + std::to_string(w);
        using handle_t = decltype(self->request(store, std::chrono::seconds(30), append_atom_v,
                                                std::vector<new_event>{}));
        std::deque<handle_t> inflight;
        int sent = 0, done = 0;
        while (done < p.per_writer) {
          while (sent < p.per_writer && static_cast<int>(inflight.size()) < window) {
            std::vector<new_event> evs{{stream, "phase", payload(p.data, sent)}};
            inflight.push_back(
                self->request(store, std::chrono::seconds(30), append_atom_v, std::move(evs)));
            ++sent;
          }
          inflight.front().receive([](std::vector<event_record>&) {},
                                   [&](caf::error& e) { errors[w] = sys.render(e); });
          inflight.pop_front();
          ++done;
          if (!errors[w].empty()) return;
        }
      });
    }
    for (auto& t : threads) t.join();
    double secs = seconds_since(t0);
    for (auto& e : errors)
      if (!e.empty()) fail(e);
    log_stats stats;
    {
      caf::scoped_actor self{sys};
      self->request(store, std::chrono::seconds(10), stats_atom_v)
          .receive([&](log_stats& s) { stats = s; }, [&](caf::error& e) { fail(sys.render(e)); });
    }
    caf::anon_send_exit(store, caf::exit_reason::user_shutdown);
    store = nullptr;
    uint64_t total = static_cast<uint64_t>(p.writers) * p.per_writer;
    if (stats.appended != total) fail("appended count mismatch");
    r.rates.push_back(total / secs);
    per_commit.push_back(stats.commits ? double(stats.appended) / stats.commits : 0);
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, ",\"events_per_commit\":%.1f", median(per_commit));
  r.extra = buf;
  return r;
}

// CPU seconds this process has used (every thread): divided by the events it shows the work
// per event independent of how busy the machine is.
double cpu_seconds() {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

std::string cpu_note(const std::vector<double>& cpu_us) {
  char buf[64];
  std::snprintf(buf, sizeof buf, ",\"cpu_us_per_event\":%.3f", median(cpu_us));
  return buf;
}

// This process's resident memory in MB (VmRSS), to show what the log itself holds.
double rss_mb() {
  std::ifstream f("/proc/self/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::atof(line.c_str() + 6) / 1024;
  return 0;
}

// (c) replay, (c2) replay_snapshot and (d) verify over `--replay` events.
// real: the events of projects being deployed (every one read by a fold); else events of a type
// the folds skip (decode only: the measure issue 17's 384,000 events/s baseline was taken with).
std::vector<result> bench_replay(const params& p, bool real) {
  result rep{real ? "replay" : "replay_skip",
             "load_replay() (decode + fold, no snapshot) over " + std::to_string(p.replay) +
                 (real ? " events of 1000 projects being deployed" : " events the folds skip (decode only)"),
             {}, {}, real ? "replay (decode + fold, no snapshot)" : "", real ? ">= 2000000 events/s" : ""};
  result snap{"replay_snapshot", "reopen + load_replay() with a snapshot at 99% of the log", {}, {},
              "replay with a snapshot at 99% of the log", ""};
  result ver{"verify", "verify() events/s over " + std::to_string(p.replay) + " events", {}, {},
             "audit verify", ">= 1000000 events/s"};
  temp_dir tmp(p.dir);
  std::string dir = tmp.path + "/events";
  {
    auto log = open_log(dir);
    std::vector<new_event> batch;
    std::vector<event_record> out;
    project_story story(1000);
    for (int i = 0; i < p.replay; ++i) {
      batch.push_back(real ? story.next(i, 1000)
                           : new_event{"project/p" + std::to_string(i % 1000), "phase", payload(p.data, i)});
      if (batch.size() == 1000 || i + 1 == p.replay) {
        auto st = log->append(batch, false, &out);
        if (!st) fail(st.message());
        batch.clear();
      }
    }
    std::printf("rss: %.1f MB after appending %d events (log still open: memtables and caches)\n", rss_mb(),
                p.replay);
  }
  double rss_before = rss_mb();
  auto log = open_log(dir);  // reopened: events come from SST files
  double rss_open = rss_mb();
  std::vector<double> rep_cpu, ver_cpu;
  for (int run = 0; run < p.runs; ++run) {
    log_replay r;
    replay_load_stats stats;
    double c0 = cpu_seconds();
    auto t0 = clk::now();
    auto st = load_replay(*log, &r, &stats);
    double secs = seconds_since(t0);
    if (!st) fail(st.message());
    if (stats.tail_events != static_cast<uint64_t>(p.replay) || stats.snapshot_seq != 0 ||
        r.projects.size() != std::min(1000, p.replay))
      fail("replay count mismatch");
    if (real && p.replay >= 12000 && r.projects["p0"].production.current.empty())
      fail("the folds did not see the deploys");
    rep.rates.push_back(stats.tail_events / secs);
    rep_cpu.push_back((cpu_seconds() - c0) * 1e6 / stats.tail_events);
  }
  rep.extra = cpu_note(rep_cpu);
  if (!real) return {rep};
  for (int run = 0; run < p.runs; ++run) {
    double c0 = cpu_seconds();
    auto t0 = clk::now();
    auto v = log->verify();
    double secs = seconds_since(t0);
    if (!v.ok) fail("verify: " + v.reason);
    ver.rates.push_back(v.checked / secs);
    ver_cpu.push_back((cpu_seconds() - c0) * 1e6 / v.checked);
  }
  ver.extra = cpu_note(ver_cpu);
  std::printf("rss: %.1f MB before open, %.1f MB after open, %.1f MB after replays and verifies\n\n", rss_before,
              rss_open, rss_mb());
  // A snapshot at 99%, as the server takes them while the log grows; then restarts.
  uint64_t at = static_cast<uint64_t>(p.replay) * 99 / 100;
  if (at > 0 && p.snapshot) {
    log_replay r;
    std::string hash;
    auto st = log->scan(1, [&](const event_record& e) {
      r.fold(e);
      hash = e.hash;
      return e.seq < at;
    });
    if (!st) fail(st.message());
    st = save_replay_snapshot(*log, r, at, hash);
    if (!st) fail(st.message());
    log.reset();
    std::vector<double> ms;
    for (int run = 0; run < p.runs; ++run) {
      auto t0 = clk::now();
      auto reopened = open_log(dir);
      log_replay loaded;
      replay_load_stats stats;
      st = load_replay(*reopened, &loaded, &stats);
      double secs = seconds_since(t0);
      if (!st) fail(st.message());
      if (stats.snapshot_seq != at || !stats.snapshot_refused.empty())
        fail("snapshot not used: " + stats.snapshot_refused);
      snap.rates.push_back(p.replay / secs);
      ms.push_back(secs * 1000);
    }
    char buf[64];
    std::snprintf(buf, sizeof buf, ",\"median_ms\":%.1f", median(ms));
    snap.extra = buf;
  }
  if (snap.rates.empty()) return {rep, ver};
  return {rep, snap, ver};
}

// The machine the figures come from, as the shared rows name it.
nlohmann::json machine() {
  nlohmann::json m{{"cpus", std::thread::hardware_concurrency()}};
  std::ifstream cpu("/proc/cpuinfo");
  for (std::string line; std::getline(cpu, line);)
    if (line.rfind("model name", 0) == 0) {
      auto colon = line.find(':');
      m["model"] = colon == std::string::npos ? line : line.substr(colon + 2);
      break;
    }
  struct utsname u;
  if (uname(&u) == 0) m["kernel"] = u.release;
  m["mem_mb"] = static_cast<long long>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGE_SIZE) / (1 << 20);
  return m;
}

std::string now_iso8601() {
  auto t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

void write_json(const std::string& file, const std::vector<result>& results) {
  nlohmann::json rows = nlohmann::json::array();
  for (auto& r : results) {
    if (r.figure.empty()) continue;
    rows.push_back({{"figure", r.figure}, {"subject", "berth"}, {"app", "-"}, {"unit", "events/s"},
                    {"median", std::round(median(r.rates))}, {"runs", r.rates}, {"target", r.target},
                    {"notes", r.what}});
  }
  nlohmann::json doc{{"bench", "bench_event_log"}, {"date", now_iso8601()}, {"machine", machine()}, {"rows", rows}};
  std::ofstream out(file);
  out << doc.dump(2) << "\n";
  if (!out) fail("cannot write " + file);
}

}  // namespace

int main(int argc, char** argv) {
  auto p = parse(argc, argv);
  std::printf("bench_event_log: runs=%d single=%d writers=%d per_writer=%d window=%d "
              "replay=%d data=%dB linger=%dus dir=%s cores=%u\n\n",
              p.runs, p.single, p.writers, p.per_writer, p.window, p.replay, p.data,
              p.linger_us, p.dir.c_str(), std::thread::hardware_concurrency());
  std::fflush(stdout);
  std::vector<result> results;
  if (p.single > 0) results.push_back(bench_single(p));
  if (p.per_writer > 0) {
    results.push_back(bench_group(p, 1));
    if (p.window > 1) {
      results.push_back(bench_group(p, p.window));
      if (p.writers == 8) {  // the issue's figure
        results.back().figure = "durable appends, 8 writers";
        results.back().target = ">= 50000 events/s";
      }
    }
  }
  if (p.replay > 0) {
    for (auto& r : bench_replay(p, true)) results.push_back(r);
    for (auto& r : bench_replay(p, false)) results.push_back(r);
  }

  std::printf("%-13s %14s %14s %14s  %s\n", "measure", "median ev/s", "min ev/s", "max ev/s",
              "what");
  for (auto& r : results) {
    auto mm = std::minmax_element(r.rates.begin(), r.rates.end());
    std::printf("%-13s %14.0f %14.0f %14.0f  %s\n", r.name.c_str(), median(r.rates), *mm.first,
                *mm.second, r.what.c_str());
  }
  std::printf("\n");
  for (auto& r : results) {
    std::printf("{\"bench\":\"event_log\",\"measure\":\"%s\",\"median_events_per_s\":%.0f,"
                "\"runs\":[",
                r.name.c_str(), median(r.rates));
    for (size_t i = 0; i < r.rates.size(); ++i)
      std::printf("%s%.0f", i ? "," : "", r.rates[i]);
    std::printf("]%s}\n", r.extra.c_str());
  }
  if (!p.json.empty()) write_json(p.json, results);
  return 0;
}
