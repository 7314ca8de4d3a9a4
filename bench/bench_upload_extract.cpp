// bench_upload_extract: extract_upload (runtime/workspace/upload_extract.hpp) of a 100 MB upload,
// 2,000 files of 50 KB in 20 folders, written as a tar.gz with the tests' tar_builder: random
// bytes (gzip stores them: the disk-bound case) and source-like text (inflate does real work).
// Each run extracts into a fresh staging folder under --dir, as an upload does; the archive is
// read from the page cache (the route has just written it). See bench/README.md.
#include <sys/resource.h>
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
#include "runtime/workspace/upload_extract.hpp"
#include "tests/common/tar_builder.hpp"

using namespace berth;
namespace fs = std::filesystem;
using json = nlohmann::json;
using bench_clock = std::chrono::steady_clock;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n == 0 ? 0 : (n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2);
}

// CPU time (user + system) of this process so far, in ms: the wall time on a shared machine
// includes waiting for a core.
double cpu_ms() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  auto ms = [](const timeval& t) { return t.tv_sec * 1e3 + t.tv_usec / 1e3; };
  return ms(ru.ru_utime) + ms(ru.ru_stime);
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

// One file's content: random bytes, or lines of code-like text (compresses about 4:1).
std::string content(std::mt19937_64& rng, size_t n, bool text) {
  std::string s(n, '\0');
  if (!text) {
    for (size_t i = 0; i + 8 <= n; i += 8) {
      uint64_t v = rng();
      std::memcpy(&s[i], &v, 8);
    }
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

struct series {
  std::string figure, notes;
  std::vector<double> runs, cpu;
};

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
  std::vector<series> rows;
  for (bool text : {false, true}) {
    fs::path archive = base / (text ? "text.tar.gz" : "random.tar.gz");
    auto t0 = bench_clock::now();
    {
      std::mt19937_64 rng(text ? 2 : 1);
      test::tar_builder t(archive);
      for (int i = 0; i < files; ++i)
        t.file(fmt::format("src/mod{:02}/file{:04}.js", i / 100, i), content(rng, static_cast<size_t>(kb) * 1024, text));
    }
    double build_ms = std::chrono::duration<double, std::milli>(bench_clock::now() - t0).count();
    auto archive_mb = fs::file_size(archive) / 1048576.0;
    std::cerr << fmt::format("{}: archive {:.1f} MB, written in {:.0f} ms\n", archive.filename().string(), archive_mb,
                             build_ms);
    series s{text ? "extract a 100 MB upload of source-like text" : "extract a 100 MB upload",
             fmt::format("extract_upload into a fresh staging folder (no fsync); {} of {}; tar.gz {:.1f} MB",
                         tree, text ? "code-like text" : "random bytes", archive_mb)};
    for (int r = 0; r < runs; ++r) {
      fs::path staging = base / fmt::format("staging{}", r);
      upload_summary sum;
      double c0 = cpu_ms();
      auto t1 = bench_clock::now();
      auto st = extract_upload(archive, staging, upload_limits{}, &sum);
      double ms = std::chrono::duration<double, std::milli>(bench_clock::now() - t1).count();
      if (!st || sum.files != static_cast<uint64_t>(files) || sum.bytes != tree_bytes) {
        std::cerr << "extract failed: " << st.message() << " (" << sum.files << " files)\n";
        ++failures;
      }
      s.runs.push_back(ms);
      s.cpu.push_back(cpu_ms() - c0);
      std::cerr << fmt::format("run {}: {:.0f} ms (cpu {:.0f} ms)\n", r, ms, s.cpu.back());
      fsutil::force_remove(staging);
    }
    rows.push_back(std::move(s));
    fs::remove(archive);
  }
  fsutil::force_remove(base);

  json out_rows = json::array();
  for (auto& s : rows) {
    out_rows.push_back({{"figure", s.figure}, {"subject", "berth"}, {"app", "-"}, {"unit", "ms"},
                        {"median", median(s.runs)}, {"runs", s.runs}, {"notes", s.notes}});
    out_rows.push_back({{"figure", s.figure + ", CPU time"}, {"subject", "berth"}, {"app", "-"}, {"unit", "ms"},
                        {"median", median(s.cpu)}, {"runs", s.cpu}, {"notes", "user + system time of the same runs"}});
    std::cout << fmt::format("{:<50} median {:>7.0f} ms (min {:.0f}, max {:.0f}); CPU median {:.0f} ms\n", s.figure,
                             median(s.runs), *std::min_element(s.runs.begin(), s.runs.end()),
                             *std::max_element(s.runs.begin(), s.runs.end()), median(s.cpu));
  }
  json out = {{"bench", "bench_upload_extract"}, {"date", iso_now()}, {"machine", machine()}, {"rows", out_rows}};
  if (!json_file.empty()) std::ofstream(json_file) << out.dump(2) << "\n";
  return failures == 0 ? 0 : 1;
}
