// bench_workspace_tree: a deploy's consistent snapshot of a 100 MB workspace (2,000 files of
// 50 KB random bytes) and the tree hash of it, with no cached file hashes and with all of them
// cached. The same calls as a deploy of a workspace project and GET .../source
// (runtime/workspace/workspace_snapshot.hpp, tree_hash.hpp). --dir picks the filesystem measured.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <random>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bench/common/bench_trees.hpp"
#include "bench/common/scale_rows.hpp"
#include "runtime/files/fs_util.hpp"
#include "runtime/workspace/tree_hash.hpp"
#include "runtime/workspace/workspace_snapshot.hpp"

using namespace berth;
namespace fs = std::filesystem;
using json = nlohmann::json;
using bench_clock = std::chrono::steady_clock;

namespace {

// `files` files of `kb` KB of random bytes (nothing compresses or dedups), 100 per folder.
uint64_t make_tree(const fs::path& root, int files, int kb) {
  std::mt19937_64 rng(17);
  std::vector<char> buf(static_cast<size_t>(kb) << 10);
  uint64_t total = 0;
  for (int i = 0; i < files; ++i) {
    bench::fill_random(rng, buf.data(), buf.size());
    fs::path p = root / fmt::format("src/m{:02}/f{:04}.js", i / 100, i);
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary).write(buf.data(), static_cast<std::streamsize>(buf.size()));
    total += buf.size();
  }
  return total;
}

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

  auto snap = bench::berth_row("snapshot of a 100 MB workspace", "ms", "",
                                "snapshot_workspace: copy + compare pass + listing hash (hashed while copied), no cached hashes; " + tree);
  auto snap_warm = bench::berth_row("snapshot of a 100 MB workspace, hashes cached", "ms", "",
                                     "the same with the tree's hashes cached (as after GET .../source): the copy is not hashed; " + tree);
  auto snap_cpu = bench::berth_row("snapshot of a 100 MB workspace, CPU time", "ms", "",
                                    "user + system time of the snapshot above (its wall time includes waiting for a core and the disk)");
  auto cold = bench::berth_row("hash of a 100 MB workspace, cold", "ms", "", "hash_tree with an empty cache: every byte read; " + tree);
  auto warm = bench::berth_row("hash of a 100 MB workspace, warm", "ms", "",
                                "hash_tree with every file's hash cached: the walk and one fstat per file; " + tree);

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
    cold.runs.push_back(bench::ms_since(t0));
    t0 = bench_clock::now();
    check(hash_tree(live, &l, &cache), l, "hash (warm)");
    warm.runs.push_back(bench::ms_since(t0));

    tree_hash_cache empty;
    fs::path dest = builds / fmt::format("r{}", r);
    double c0 = bench::thread_cpu_ms();
    t0 = bench_clock::now();
    check(snapshot_workspace(live, dest, &empty, nullptr, &l), l, "snapshot");
    snap.runs.push_back(bench::ms_since(t0));
    snap_cpu.runs.push_back(bench::thread_cpu_ms() - c0);
    fsutil::force_remove(dest);
    t0 = bench_clock::now();
    check(snapshot_workspace(live, dest, &cache, nullptr, &l), l, "snapshot (hashes cached)");
    snap_warm.runs.push_back(bench::ms_since(t0));
    fsutil::force_remove(dest);
    std::cerr << fmt::format("run {}: snapshot {:.0f} ms (cpu {:.0f} ms; {:.0f} ms cached), hash cold {:.0f} ms, warm {:.1f} ms\n", r,
                             snap.runs.back(), snap_cpu.runs.back(), snap_warm.runs.back(), cold.runs.back(), warm.runs.back());
  }
  fsutil::force_remove(base);

  std::vector<bench::figure_row> rows;
  for (auto* s : {&snap, &snap_cpu, &snap_warm, &cold, &warm})
    if (!s->runs.empty()) rows.push_back(*s);
  bench::print_rows(rows);
  std::string error;
  if (!json_file.empty() && !bench::write_rows(json_file, "bench_workspace_tree", rows, &error)) {
    std::cerr << error << "\n";
    return 1;
  }
  return failures == 0 ? 0 : 1;
}
