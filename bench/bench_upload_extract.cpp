// bench_upload_extract: extract_upload (runtime/workspace/upload_extract.hpp) of a 100 MB upload,
// 2,000 files of 50 KB in 20 folders, written as a tar.gz with the tests' tar_builder: random
// bytes (gzip stores them: the disk-bound case) and source-like text (inflate does real work).
// Each run extracts into a fresh staging folder under --dir, as an upload does; the archive is
// read from the page cache (the route has just written it). See bench/README.md.
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
#include "runtime/workspace/upload_extract.hpp"
#include "tests/common/tar_builder.hpp"

using namespace berth;
namespace fs = std::filesystem;
using json = nlohmann::json;
using bench_clock = std::chrono::steady_clock;

namespace {

// One file's content: random bytes, or lines of code-like text (compresses about 4:1).
std::string content(std::mt19937_64& rng, size_t n, bool text) {
  std::string s(n, '\0');
  if (!text) {
    bench::fill_random(rng, &s[0], n);
    return s;
  }
  static const char* words[] = {"const ", "return ", "function ", "value", "=> ", "{ ", "} ", "if (", ") ",
                                "items", ".map(", "export ", "import ", "from ", "'./lib'", ";\n", "  "};
  s.clear();
  while (s.size() < n) {
    s += words[rng() % (sizeof words / sizeof *words)];
    s += std::to_string(rng() % 1000);
  }
  s.resize(n);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_upload_extract: extracting a 100 MB upload"};
  int runs = 5, files = 2000, kb = 50;
  std::string dir = "/tmp", json_file;
  app.add_option("--runs", runs, "runs per archive (median reported)");
  app.add_option("--files", files, "files in the tree");
  app.add_option("--kb", kb, "size of each file in KB");
  app.add_option("--dir", dir, "where the archive and the staging folders go (the filesystem measured)");
  app.add_option("--json", json_file, "write the rows as JSON here");
  CLI11_PARSE(app, argc, argv);

  std::string tmpl = (fs::path(dir) / "bench-upload-extract-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) return std::perror("mkdtemp"), 1;
  fs::path base = tmpl;
  uint64_t tree_bytes = static_cast<uint64_t>(files) * kb * 1024;
  std::string tree = fmt::format("{} files of {} KB in {} folders, {:.0f} MB", files, kb, (files + 99) / 100,
                                 tree_bytes / 1048576.0);

  int failures = 0;
  std::vector<bench::figure_row> rows;
  for (bool text : {false, true}) {
    fs::path archive = base / (text ? "text.tar.gz" : "random.tar.gz");
    auto t0 = bench_clock::now();
    {
      std::mt19937_64 rng(text ? 2 : 1);
      test::tar_builder t(archive);
      for (int i = 0; i < files; ++i)
        t.file(fmt::format("src/mod{:02}/file{:04}.js", i / 100, i), content(rng, static_cast<size_t>(kb) * 1024, text));
    }
    double build_ms = bench::ms_since(t0);
    auto archive_mb = fs::file_size(archive) / 1048576.0;
    std::cerr << fmt::format("{}: archive {:.1f} MB, written in {:.0f} ms\n", archive.filename().string(), archive_mb,
                             build_ms);
    auto s = bench::berth_row(text ? "extract a 100 MB upload of source-like text" : "extract a 100 MB upload", "ms", "",
                              fmt::format("extract_upload into a fresh staging folder (no fsync); {} of {}; tar.gz {:.1f} MB",
                                          tree, text ? "code-like text" : "random bytes", archive_mb));
    auto cpu = bench::berth_row(s.figure + ", CPU time", "ms", "", "user + system time of the same runs");
    for (int r = 0; r < runs; ++r) {
      fs::path staging = base / fmt::format("staging{}", r);
      upload_summary sum;
      double c0 = bench::process_cpu_ms();
      auto t1 = bench_clock::now();
      auto st = extract_upload(archive, staging, upload_limits{}, &sum);
      double ms = bench::ms_since(t1);
      if (!st || sum.files != static_cast<uint64_t>(files) || sum.bytes != tree_bytes) {
        std::cerr << "extract failed: " << st.message() << " (" << sum.files << " files)\n";
        ++failures;
      }
      s.runs.push_back(ms);
      cpu.runs.push_back(bench::process_cpu_ms() - c0);
      std::cerr << fmt::format("run {}: {:.0f} ms (cpu {:.0f} ms)\n", r, ms, cpu.runs.back());
      fsutil::force_remove(staging);
    }
    rows.push_back(std::move(s));
    rows.push_back(std::move(cpu));
    fs::remove(archive);
  }
  fsutil::force_remove(base);

  bench::print_rows(rows);
  std::string error;
  if (!json_file.empty() && !bench::write_rows(json_file, "bench_upload_extract", rows, &error)) {
    std::cerr << error << "\n";
    return 1;
  }
  return failures == 0 ? 0 : 1;
}
