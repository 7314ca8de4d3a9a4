// bench_workspace_tree: a deploy's consistent snapshot of a 100 MB workspace (2,000 files of
// 50 KB random bytes) and the tree hash of it, with no cached file hashes and with all of them
// cached. The same calls as a deploy of a workspace project and GET .../source
// (runtime/workspace/workspace_snapshot.hpp, tree_hash.hpp). --dir picks the filesystem measured.
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <random>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "runtime/files/fs_util.hpp"
#include "runtime/workspace/tree_hash.hpp"
#include "runtime/workspace/workspace_snapshot.hpp"

using namespace berth;
namespace fs = std::filesystem;
using json = nlohmann::json;
using bench_clock = std::chrono::steady_clock;

namespace {

double ms_since(bench_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(bench_clock::now() - t0).count();
}

// CPU time (user + system) of this thread so far, in ms: on a shared, loaded machine the wall
// time is mostly waiting for a core or the disk.
double thread_cpu_ms() {
  rusage ru{};
  ::getrusage(RUSAGE_THREAD, &ru);
  auto ms = [](const timeval& t) { return t.tv_sec * 1e3 + t.tv_usec / 1e3; };
  return ms(ru.ru_utime) + ms(ru.ru_stime);
}

// `files` files of `kb` KB of random bytes (nothing compresses or dedups), 100 per folder.
uint64_t make_tree(const fs::path& root, int files, int kb) {
  std::mt19937_64 rng(17);
  std::vector<char> buf(static_cast<size_t>(kb) << 10);
  uint64_t total = 0;
  for (int i = 0; i < files; ++i) {
    for (size_t k = 0; k + 8 <= buf.size(); k += 8) {
      uint64_t v = rng();
      std::memcpy(buf.data() + k, &v, 8);
    }
    fs::path p = root / fmt::format("src/m{:02}/f{:04}.js", i / 100, i);
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary).write(buf.data(), static_cast<std::streamsize>(buf.size()));
    total += buf.size();
  }
  return total;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n == 0 ? 0 : (n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2);
}

json machine() {
  json m;
  m["cpus"] = std::thread::hardware_concurrency();
  std::ifstream cpu("/proc/cpuinfo");
  for (std::string line; std::getline(cpu, line);)
    if (line.rfind("model name", 0) == 0) {
      m["model"] = line.substr(line.find(':') + 2);
      break;
    }
  struct utsname u;
  if (::uname(&u) == 0) m["kernel"] = u.release;
  m["mem_mb"] = static_cast<int64_t>(::sysconf(_SC_PHYS_PAGES)) * ::sysconf(_SC_PAGESIZE) / (1 << 20);
  return m;
}

std::string iso_now() {
  std::time_t t = std::time(nullptr);
  char b[32];
  std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return b;
}

struct series {
  std::string figure, unit, notes;
  std::vector<double> runs;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_workspace_tree: snapshot and hash of a 100 MB workspace"};
  int runs = 5, files = 2000, kb = 50;
  std::string dir = "/tmp", json_file;
  app.add_option("--runs", runs, "runs (median reported)");
  app.add_option("--files", files, "files in the tree");
  app.add_option("--kb", kb, "size of each file in KB");
  app.add_option("--dir", dir, "where the temp project folder goes (the filesystem measured)");
  app.add_option("--json", json_file, "write the rows as JSON here");
  CLI11_PARSE(app, argc, argv);

  std::string tmpl = (fs::path(dir) / "bench-workspace-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) return std::perror("mkdtemp"), 1;
  fs::path base = tmpl, live = base / "preview/src", builds = base / "builds";
  uint64_t bytes = make_tree(live, files, kb);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // out of the files' clock tick
  std::string tree = fmt::format("{} files of {} KB, {:.0f} MB; the files are in the page cache", files, kb,
                                 bytes / 1048576.0);
  std::cerr << "tree: " << tree << " in " << live << "\n";

  series snap{"snapshot of a 100 MB workspace", "ms",
              "snapshot_workspace: copy + compare pass + listing hash (hashed while copied), no cached hashes; " + tree};
  series snap_warm{"snapshot of a 100 MB workspace, hashes cached", "ms",
                   "the same with the tree's hashes cached (as after GET .../source): the copy is not hashed; " + tree};
  series snap_cpu{"snapshot of a 100 MB workspace, CPU time", "ms",
                  "user + system time of the snapshot above (its wall time includes waiting for a core and the disk)"};
  series cold{"hash of a 100 MB workspace, cold", "ms", "hash_tree with an empty cache: every byte read; " + tree};
  series warm{"hash of a 100 MB workspace, warm", "ms",
              "hash_tree with every file's hash cached: the walk and one fstat per file; " + tree};

  int failures = 0;
  std::string expected;
  auto check = [&](const status& s, const tree_listing& l, const char* what) {
    if (!s) {
      std::cerr << what << " failed: " << s.message() << "\n";
      ++failures;
    } else if (l.files != static_cast<uint64_t>(files) || (!expected.empty() && l.hash != expected)) {
      std::cerr << what << ": unexpected listing (" << l.files << " files, hash " << l.hash << ")\n";
      ++failures;
    } else if (expected.empty()) {
      expected = l.hash;
    }
  };
  for (int r = 0; r < runs; ++r) {
    tree_listing l;
    tree_hash_cache cache;
    auto t0 = bench_clock::now();
    check(hash_tree(live, &l, &cache), l, "hash (cold)");
    cold.runs.push_back(ms_since(t0));
    t0 = bench_clock::now();
    check(hash_tree(live, &l, &cache), l, "hash (warm)");
    warm.runs.push_back(ms_since(t0));

    tree_hash_cache empty;
    fs::path dest = builds / fmt::format("r{}", r);
    double c0 = thread_cpu_ms();
    t0 = bench_clock::now();
    check(snapshot_workspace(live, dest, &empty, nullptr, &l), l, "snapshot");
    snap.runs.push_back(ms_since(t0));
    snap_cpu.runs.push_back(thread_cpu_ms() - c0);
    fsutil::force_remove(dest);
    t0 = bench_clock::now();
    check(snapshot_workspace(live, dest, &cache, nullptr, &l), l, "snapshot (hashes cached)");
    snap_warm.runs.push_back(ms_since(t0));
    fsutil::force_remove(dest);
    std::cerr << fmt::format("run {}: snapshot {:.0f} ms (cpu {:.0f} ms; {:.0f} ms cached), hash cold {:.0f} ms, warm {:.1f} ms\n", r,
                             snap.runs.back(), snap_cpu.runs.back(), snap_warm.runs.back(), cold.runs.back(), warm.runs.back());
  }
  fsutil::force_remove(base);

  json rows = json::array();
  for (auto* s : {&snap, &snap_cpu, &snap_warm, &cold, &warm}) {
    rows.push_back({{"figure", s->figure}, {"subject", "berth"}, {"app", "-"}, {"unit", s->unit},
                    {"median", median(s->runs)}, {"runs", s->runs}, {"notes", s->notes}});
    std::cout << fmt::format("{:<50} median {:>8.1f} {}  (min {:.1f}, max {:.1f})\n", s->figure, median(s->runs),
                             s->unit, *std::min_element(s->runs.begin(), s->runs.end()),
                             *std::max_element(s->runs.begin(), s->runs.end()));
  }
  json out = {{"bench", "bench_workspace_tree"}, {"date", iso_now()}, {"machine", machine()}, {"rows", rows}};
  if (!json_file.empty()) std::ofstream(json_file) << out.dump(2) << "\n";
  return failures == 0 ? 0 : 1;
}
