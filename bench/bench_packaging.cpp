// bench_packaging: preparing and packaging a release whose large tree (a node_modules of
// ~20,000 files, ~200 MB) is unchanged, changed in one file, or packaged for the first time;
// and the disk a new release takes for the files it shares with the previous one.
// The same calls as a deploy's preparing and packaging steps (runtime/release/source.hpp,
// package_build.hpp), on a fresh project folder per run. See bench/README.md.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <random>
#include <set>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bench/common/bench_trees.hpp"
#include "bench/common/scale_rows.hpp"
#include "runtime/files/fs_util.hpp"
#include "runtime/release/package_build.hpp"
#include "runtime/release/release.hpp"
#include "runtime/release/source.hpp"

using namespace berth;
namespace fs = std::filesystem;
using json = nlohmann::json;
using bench_clock = std::chrono::steady_clock;

namespace {

// The tree: `files` files in packages of 50, sized so the total is about `total_mb`: one file in
// 100 is large (the bulk of the bytes, as bundles and binaries), the rest a few hundred bytes to
// a few KB. Random bytes (nothing compresses or dedups by accident).
uint64_t make_tree(const fs::path& src, int files, int total_mb) {
  std::mt19937_64 rng(17);
  uint64_t small_total = 0;
  std::vector<uint64_t> sizes(files);
  for (int i = 0; i < files; ++i)
    if (i % 100 != 0) small_total += (sizes[i] = 200 + rng() % 4000);
  int large = (files + 99) / 100;
  uint64_t budget = static_cast<uint64_t>(total_mb) << 20;
  uint64_t large_each = budget > small_total ? (budget - small_total) / large : 4096;
  uint64_t total = 0;
  std::vector<char> buf;
  for (int i = 0; i < files; ++i) {
    uint64_t n = i % 100 == 0 ? large_each / 2 + rng() % large_each : sizes[i];
    buf.resize(n);
    bench::fill_random(rng, buf.data(), n);
    fs::path p = src / "node_modules" / fmt::format("pkg{:04}", i / 50) / fmt::format("lib/f{:03}.js", i % 50);
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary).write(buf.data(), static_cast<std::streamsize>(n));
    total += n;
  }
  std::ofstream(src / "server.js") << "console.log('v0')\n";
  return total;
}

// Blocks of the entries of `release` whose inode no release of `others` holds: regular files
// other than `changed` (files_only), or everything.
uint64_t new_blocks_bytes(const fs::path& release, const std::vector<fs::path>& others, bool files_only,
                          const fs::path& changed = {}) {
  std::set<ino_t> shared;
  for (auto& o : others)
    for (auto& e : fs::recursive_directory_iterator(o)) {
      struct stat st;
      if (::lstat(e.path().c_str(), &st) == 0) shared.insert(st.st_ino);
    }
  uint64_t bytes = 0;
  for (auto& e : fs::recursive_directory_iterator(release)) {
    struct stat st;
    if (::lstat(e.path().c_str(), &st) != 0 || shared.count(st.st_ino)) continue;
    if (files_only && (!S_ISREG(st.st_mode) || e.path() == release / changed)) continue;
    bytes += static_cast<uint64_t>(st.st_blocks) * 512;
  }
  return bytes;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_packaging: packaging a release whose large tree is unchanged"};
  int runs = 5, files = 20000, total_mb = 200;
  std::string dir = "/tmp", json_file;
  app.add_option("--runs", runs, "runs (median reported)");
  app.add_option("--files", files, "files in the tree");
  app.add_option("--mb", total_mb, "size of the tree in MB");
  app.add_option("--dir", dir, "where the temp project folder goes (the filesystem measured)");
  app.add_option("--json", json_file, "write the rows as JSON here");
  CLI11_PARSE(app, argc, argv);

  std::string tmpl = (fs::path(dir) / "bench-packaging-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) return std::perror("mkdtemp"), 1;
  fs::path base = tmpl, src = base / "src";
  uint64_t tree_bytes = make_tree(src, files, total_mb);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // out of the files' clock tick
  std::string tree = fmt::format("{} files, {:.0f} MB", files + 1, tree_bytes / 1048576.0);
  std::cerr << "tree: " << tree << " in " << src << "\n";

  auto first = bench::berth_row("packaging of a 200 MB tree, first release", "ms", "", "no previous release: every byte read and copied; " + tree);
  auto prep = bench::berth_row("preparing (source snapshot) of the 200 MB tree", "ms", "", "a full copy of the source into builds/<id>; " + tree);
  auto unchanged = bench::berth_row("packaging with an unchanged 200 MB tree", "ms", "< 50 ms",
                                    "new release: server.js changed, node_modules unchanged (hard-linked, not re-read); " + tree);
  auto unchanged_cpu = bench::berth_row("packaging with an unchanged 200 MB tree, CPU time", "ms", "",
                                        "user + system time of the same step (the wall time above includes waiting for a core)");
  auto identical = bench::berth_row("packaging of an identical build", "ms", "", "nothing changed: the hash is known from the cache; " + tree);
  auto one_changed = bench::berth_row("packaging with 1 changed file in the 200 MB tree", "ms", "",
                                      "one file in the middle of node_modules rewritten: re-read from the last checkpoint before it; " + tree);
  auto disk = bench::berth_row("new disk for unchanged files", "MB", "== 0 MB",
                               "blocks of the new release's regular files, other than the changed server.js, that it does not share "
                               "with the previous release");
  auto disk_all = bench::berth_row("new disk of a release with an unchanged 200 MB tree", "MB", "",
                                   "every block the new release does not share with the previous one: its folders and server.js");
  auto old_way = bench::berth_row("packaging with an unchanged 200 MB tree, before (hash_artifacts + package_release)", "ms", "",
                                  "the pre-issue-17 path: hash every byte, then copy every byte; " + tree);

  int failures = 0;
  auto check = [&](const status& s, const char* what) {
    if (!s) {
      std::cerr << what << " failed: " << s.message() << "\n";
      ++failures;
    }
  };
  // One project for every run (its production/ and cache persist, as a real project's do); each
  // run deploys a changed server.js over the unchanged tree, then the same build again, then a
  // build with one file of the tree changed. The first-release and before-this-change figures
  // package the same build into empty folders.
  fs::path releases = base / "production", builds = base / "builds";
  std::string current;
  double cpu_ms = 0;
  auto package = [&](const fs::path& ws, const snapshot_record* rec, const fs::path& into, double* ms) {
    package_report rep;
    double c0 = bench::thread_cpu_ms();
    auto t0 = bench_clock::now();
    check(package_build(ws, {"."}, rec, into, [&](const std::string& h) { return h != current; }, &rep), "packaging");
    *ms = bench::ms_since(t0);
    cpu_ms = bench::thread_cpu_ms() - c0;
    return rep;
  };
  auto snapshot = [&](const std::string& name, snapshot_record* rec, double* ms) {
    fs::path ws = builds / name;
    auto t0 = bench_clock::now();
    check(snapshot_source(src.string(), "", "", ws, default_git_timeout, "", rec), "snapshot");
    *ms = bench::ms_since(t0);
    return ws;
  };
  {  // the project's first release (not timed: the runs below time first releases apart)
    snapshot_record rec;
    double ms = 0;
    auto ws = snapshot("initial", &rec, &ms);
    current = package(ws, &rec, releases, &ms).hash;
    fsutil::force_remove(ws);
  }
  for (int r = 0; r < runs; ++r) {
    double ms = 0;
    std::ofstream(src / "server.js") << fmt::format("console.log('v{}')\n", r + 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // out of the edit's clock tick
    snapshot_record rec;
    auto ws = snapshot(fmt::format("r{}", r), &rec, &ms);
    prep.runs.push_back(ms);
    std::string previous = current;
    auto b = package(ws, &rec, releases, &ms);
    unchanged.runs.push_back(ms);
    unchanged_cpu.runs.push_back(cpu_ms);
    current = b.hash;
    disk.runs.push_back(new_blocks_bytes(releases / b.hash, {releases / previous}, true, "server.js") / 1048576.0);
    disk_all.runs.push_back(new_blocks_bytes(releases / b.hash, {releases / previous}, false) / 1048576.0);
    std::cerr << fmt::format("run {}: unchanged tree {:.1f} ms (cpu {:.1f} ms; walk {} ms, fill {} ms, save {} ms; "
                             "{} linked, {} not read, {} KB read)\n",
                             r, ms, cpu_ms, b.walk_us / 1000, b.fill_us / 1000, b.save_us / 1000, b.linked, b.unread,
                             b.bytes_read >> 10);
    package(ws, &rec, releases, &ms);
    identical.runs.push_back(ms);
    // The same build as a first release (no cache, nothing to link), then the way before.
    fs::path fresh = base / "fresh";
    package(ws, &rec, fresh, &ms);
    first.runs.push_back(ms);
    fsutil::force_remove(fresh);
    auto t0 = bench_clock::now();
    std::string h;
    auto s = hash_artifacts(ws, {"."}, &h);
    if (s) s = package_release(ws, {"."}, fresh, h, nullptr, false);
    old_way.runs.push_back(bench::ms_since(t0));
    check(s, "package_release");
    fsutil::force_remove(fresh);
    fsutil::force_remove(ws);
    std::cerr << fmt::format("run {}: identical {:.1f} ms, first {:.0f} ms, before {:.0f} ms\n", r,
                             identical.runs.back(), first.runs.back(), old_way.runs.back());
    {  // one file in the middle of the tree
      fs::path f = src / "node_modules" / fmt::format("pkg{:04}", files / 100) / fmt::format("lib/f{:03}.js", r + 1);
      std::fstream(f, std::ios::in | std::ios::out | std::ios::binary).write("changed!", 8);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    snapshot_record rec2;
    auto ws2 = snapshot(fmt::format("c{}", r), &rec2, &ms);
    auto c = package(ws2, &rec2, releases, &ms);
    current = c.hash;
    one_changed.runs.push_back(ms);
    fsutil::force_remove(ws2);
    std::cerr << fmt::format("run {}: one changed {:.0f} ms ({} KB read)\n", r, ms, c.bytes_read >> 10);
    // Retention as a project keeps it: the release before the previous one goes.
    for (auto& e : fs::directory_iterator(releases))
      if (auto n = e.path().filename().string(); valid_release_hash(n) && n != current && n != b.hash)
        fsutil::force_remove(e.path());
  }
  fsutil::force_remove(base);

  std::vector<bench::figure_row> rows;
  for (auto* s : {&unchanged, &unchanged_cpu, &disk, &disk_all, &identical, &one_changed, &first, &old_way, &prep})
    rows.push_back(*s);
  bench::print_rows(rows);
  std::string error;
  if (!json_file.empty() && !bench::write_rows(json_file, "bench_packaging", rows, &error)) {
    std::cerr << error << "\n";
    return 1;
  }
  return failures == 0 ? 0 : 1;
}
