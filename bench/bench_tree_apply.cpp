// bench_tree_apply: applying an uploaded tree to a workspace's live tree (apply_tree_change,
// replace_tree; runtime/workspace/tree_change.hpp): a new 100 MB tree of 2,000 files (50 KB of
// random bytes each, 40 folders) onto a live tree of the same shape whose every file differs.
// Two cases: the staged files were just written (as extract_upload leaves them: the apply's one
// syncfs flushes their data), and the staged data already on disk (the renames and the intent
// alone); and the first upload, onto an empty tree. Also one write_file. On a filesystem mounted
// with `discard` the replacing cases are bound by freeing the old files' blocks (each rename over
// a file on disk frees it). A fresh workspace per run; median of --runs.
//   ./build/bench_tree_apply [--runs 5] [--dir /tmp] [--json FILE]
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
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
    for (size_t k = 0; k + 8 <= buf.size(); k += 8) {
      uint64_t v = rng();
      std::memcpy(buf.data() + k, &v, 8);
    }
    fs::path p = root / fmt::format("pkg{:02}", i / 50) / fmt::format("f{:03}.js", i % 50);
    if (i % 50 == 0) {
      fs::create_directories(p.parent_path());
      fs::permissions(p.parent_path(), fs::perms(0755));
    }
    std::ofstream(p, std::ios::binary).write(buf.data(), static_cast<std::streamsize>(buf.size()));
  }
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n == 0 ? 0 : (n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2);
}

std::string iso_now() {
  std::time_t t = std::time(nullptr);
  char b[32];
  std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return b;
}

json machine() {
  json m;
  m["cpus"] = std::thread::hardware_concurrency();
  struct utsname u;
  if (::uname(&u) == 0) m["kernel"] = u.release;
  return m;
}

struct series {
  std::string figure, notes;
  std::vector<double> runs;
};

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

  series fresh{"apply a 100 MB upload (2,000 files) onto a tree of the same shape, staged data just written", ""};
  series synced{"apply a 100 MB upload (2,000 files) onto a tree of the same shape, staged data on disk", ""};
  series first{"apply a 100 MB upload (2,000 files) onto an empty tree (the first upload), staged data on disk", ""};
  series one{"write one file into a 100 MB workspace (write_file)", ""};
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
      auto t1 = bench_clock::now();
      if (!st) {
        std::cerr << "apply failed: " << st.message() << "\n";
        ++failures;
        continue;
      }
      s->runs.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
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
    auto t1 = bench_clock::now();
    if (st) one.runs.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    else ++failures;
    fsutil::force_remove(base);
  }

  json rows = json::array();
  for (auto* s : {&first, &fresh, &synced, &one}) {
    if (s->runs.empty()) continue;
    rows.push_back({{"figure", s->figure}, {"subject", "berth"}, {"app", "-"}, {"unit", "ms"},
                    {"median", median(s->runs)}, {"runs", s->runs}});
    std::cout << fmt::format("{:<100} median {:>8.1f} ms  (min {:.1f}, max {:.1f})\n", s->figure, median(s->runs),
                             *std::min_element(s->runs.begin(), s->runs.end()),
                             *std::max_element(s->runs.begin(), s->runs.end()));
  }
  json out = {{"bench", "bench_tree_apply"}, {"date", iso_now()}, {"machine", machine()}, {"rows", rows}};
  if (!json_file.empty()) std::ofstream(json_file) << out.dump(2) << "\n";
  return failures == 0 ? 0 : 1;
}
