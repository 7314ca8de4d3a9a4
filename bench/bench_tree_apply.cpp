// bench_tree_apply: applying an uploaded tree to a workspace's live tree (apply_tree_change,
// replace_tree; runtime/workspace/tree_change.hpp): a new 100 MB tree of 2,000 files (50 KB of
// random bytes each, 40 folders) onto a live tree of the same shape whose every file differs.
// Two cases: the staged files were just written (as extract_upload leaves them: the apply's one
// syncfs flushes their data), and the staged data already on disk (the renames and the intent
// alone); and the first upload, onto an empty tree. Also one write_file. On a filesystem mounted
// with `discard` the replacing cases are bound by freeing the old files' blocks (each rename over
// a file on disk frees it). A fresh workspace per run; median of --runs.
//   ./build/bench_tree_apply [--runs 5] [--dir /tmp] [--json FILE]
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <random>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bench/common/bench_trees.hpp"
#include "bench/common/scale_rows.hpp"
#include "runtime/files/fs_util.hpp"
#include "runtime/workspace/tree_change.hpp"

using namespace berth;
namespace fs = std::filesystem;
using json = nlohmann::json;
using bench_clock = std::chrono::steady_clock;

namespace {

void make_tree(const fs::path& root, int files, size_t file_bytes, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<char> buf(file_bytes);
  fs::create_directories(root);
  for (int i = 0; i < files; ++i) {
    bench::fill_random(rng, buf.data(), buf.size());
    fs::path p = root / fmt::format("pkg{:02}", i / 50) / fmt::format("f{:03}.js", i % 50);
    if (i % 50 == 0) {
      fs::create_directories(p.parent_path());
      fs::permissions(p.parent_path(), fs::perms(0755));
    }
    std::ofstream(p, std::ios::binary).write(buf.data(), static_cast<std::streamsize>(buf.size()));
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_tree_apply: apply a 100 MB uploaded tree to a live workspace tree"};
  int runs = 5, files = 2000;
  size_t file_kb = 50;
  std::string dir = "/tmp", json_file;
  app.add_option("--runs", runs, "runs per measure (median reported)");
  app.add_option("--files", files, "files in the tree");
  app.add_option("--file-kb", file_kb, "KB per file");
  app.add_option("--dir", dir, "parent folder of the workspaces");
  app.add_option("--json", json_file, "write the rows as JSON here");
  CLI11_PARSE(app, argc, argv);

  auto fresh = bench::berth_row("apply a 100 MB upload (2,000 files) onto a tree of the same shape, staged data just written", "ms", "", "");
  auto synced = bench::berth_row("apply a 100 MB upload (2,000 files) onto a tree of the same shape, staged data on disk", "ms", "", "");
  auto first = bench::berth_row("apply a 100 MB upload (2,000 files) onto an empty tree (the first upload), staged data on disk", "ms", "", "");
  auto one = bench::berth_row("write one file into a 100 MB workspace (write_file)", "ms", "", "");
  int failures = 0;
  for (int r = 0; r < runs; ++r) {
    fs::path base = fs::path(dir) / ("berth-bench-apply-" + fsutil::random_suffix());
    fs::path live = base / "preview" / "src", uploads = base / ".uploads";
    fs::create_directories(live);
    for (auto* s : {&first, &fresh, &synced}) {
      fs::path staging;
      if (!new_staging(uploads, &staging)) return 1;
      make_tree(staging / "tree", files, file_kb << 10, 100 + r * 3 + (s == &fresh) + 2 * (s == &synced));
      if (s != &fresh) ::sync();
      tree_change c;
      c.what = tree_change::kind::replace_tree;
      c.staging = staging;
      auto t0 = bench_clock::now();
      auto st = apply_tree_change(live, c, {});
      if (!st) {
        std::cerr << "apply failed: " << st.message() << "\n";
        ++failures;
        continue;
      }
      s->runs.push_back(bench::ms_since(t0));
    }
    fs::path staging;
    if (!new_staging(uploads, &staging)) return 1;
    std::ofstream(staging / "file") << "console.log('edited')\n";
    tree_change c;
    c.what = tree_change::kind::write_file;
    c.path = "pkg07/new/edited.js";
    c.staging = staging;
    auto t0 = bench_clock::now();
    auto st = apply_tree_change(live, c, {});
    if (st) one.runs.push_back(bench::ms_since(t0));
    else ++failures;
    fsutil::force_remove(base);
  }

  std::vector<bench::figure_row> rows;
  for (auto* s : {&first, &fresh, &synced, &one})
    if (!s->runs.empty()) rows.push_back(*s);
  bench::print_rows(rows);
  std::string error;
  if (!json_file.empty() && !bench::write_rows(json_file, "bench_tree_apply", rows, &error)) {
    std::cerr << error << "\n";
    return 1;
  }
  return failures == 0 ? 0 : 1;
}
