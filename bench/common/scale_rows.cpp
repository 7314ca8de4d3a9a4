#include "bench/common/scale_rows.hpp"

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>
#include <thread>

#include "bench/common/berth_bench.hpp"

namespace berth::bench {

namespace {

std::string first_line_value(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) != 0) continue;
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    auto v = line.substr(colon + 1);
    auto b = v.find_first_not_of(" \t");
    return b == std::string::npos ? "" : v.substr(b);
  }
  return "";
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Two decimals are enough for every figure here and keep the JSON readable.
double rounded(double v) { return std::round(v * 100) / 100; }

}  // namespace

figure_row berth_row(std::string figure, std::string unit, std::string target, std::string notes) {
  figure_row r;
  r.figure = std::move(figure);
  r.unit = std::move(unit);
  r.notes = std::move(notes);
  r.target = std::move(target);
  return r;
}

nlohmann::json machine_json() {
  utsname u{};
  ::uname(&u);
  long mem_kb = 0;
  std::istringstream(first_line_value("/proc/meminfo", "MemTotal")) >> mem_kb;
  return {{"cpus", std::thread::hardware_concurrency()},
          {"model", first_line_value("/proc/cpuinfo", "model name")},
          {"kernel", u.release},
          {"mem_mb", mem_kb / 1024},
          {"loadavg", loadavg()}};
}

bool write_rows(const std::string& path, const std::string& bench, const std::vector<figure_row>& rows,
                std::string* error) {
  nlohmann::json out = {{"bench", bench}, {"date", utc_now()}, {"machine", machine_json()},
                        {"rows", nlohmann::json::array()}};
  for (auto& r : rows) {
    nlohmann::json runs = nlohmann::json::array();
    for (double v : r.runs) runs.push_back(std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(rounded(v)));
    double m = median(r.runs);
    out["rows"].push_back({{"figure", r.figure}, {"subject", r.subject}, {"app", r.app}, {"unit", r.unit},
                           {"median", std::isnan(m) ? nlohmann::json(nullptr) : nlohmann::json(rounded(m))},
                           {"runs", runs}, {"target", r.target}, {"notes", r.notes}});
  }
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << out.dump(2) << "\n";
    if (!f) {
      *error = "cannot write " + tmp;
      return false;
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    *error = "cannot rename " + tmp + " to " + path;
    return false;
  }
  return true;
}

void print_rows(const std::vector<figure_row>& rows) {
  size_t width = 0;
  for (auto& r : rows) width = std::max(width, r.figure.size());
  for (auto& r : rows) {
    if (r.runs.empty()) continue;
    auto [lo, hi] = std::minmax_element(r.runs.begin(), r.runs.end());
    std::printf("%-*s median %9.1f %s  (min %.1f, max %.1f)\n", static_cast<int>(width), r.figure.c_str(),
                median(r.runs), r.unit.c_str(), *lo, *hi);
  }
}

}  // namespace berth::bench
