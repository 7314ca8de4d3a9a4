#include "bench/common/managers_report.hpp"

#include <sys/utsname.h>

#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <thread>

#include "bench/common/berth_bench.hpp"

namespace berth::bench {

using json = nlohmann::json;

namespace {

json rounded(double x) { return std::isnan(x) ? json(nullptr) : json(std::round(x * 1000) / 1000); }

// The value of the first "<key> : value" line of a /proc file such as cpuinfo.
std::string proc_field(const std::string& file, const std::string& key) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key, 0) == 0) {
      auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      auto v = line.substr(colon + 1);
      v.erase(0, v.find_first_not_of(" \t"));
      return v;
    }
  return "";
}

json machine() {
  utsname u{};
  ::uname(&u);
  auto mem = proc_field("/proc/meminfo", "MemTotal");  // "4026532 kB"
  long mem_mb = mem.empty() ? 0 : std::stol(mem) / 1024;
  return {{"cpus", std::thread::hardware_concurrency()},
          {"model", proc_field("/proc/cpuinfo", "model name")},
          {"kernel", u.release},
          {"mem_mb", mem_mb}};
}

std::string iso_now() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

}  // namespace

json figure_row::to_json() const {
  json r = json::array();
  for (double v : runs) r.push_back(rounded(v));
  return {{"figure", figure}, {"subject", subject}, {"app", app}, {"unit", unit},
          {"median", rounded(median(runs))}, {"runs", r}, {"target", target}, {"notes", notes}};
}

figure_row& figure_table::row(const std::string& figure, const std::string& subject, const std::string& app,
                              const std::string& unit, const std::string& target) {
  for (auto& r : rows_)
    if (r.figure == figure && r.subject == subject && r.app == app) return r;
  rows_.push_back({figure, subject, app, unit, target, "", {}});
  return rows_.back();
}

void figure_table::add(const std::string& figure, const std::string& subject, const std::string& app,
                       const std::string& unit, double value, const std::string& target) {
  row(figure, subject, app, unit, target).runs.push_back(value);
}

void figure_table::note(const std::string& figure, const std::string& subject, const std::string& app,
                        const std::string& text) {
  for (auto& r : rows_)
    if (r.figure == figure && r.subject == subject && r.app == app) {
      if (r.notes.find(text) == std::string::npos) r.notes += (r.notes.empty() ? "" : "; ") + text;
      return;
    }
}

namespace {

// `s` padded with spaces to `width` characters (UTF-8 aware, for the arrow in a figure name).
std::string padded(const std::string& s, size_t width) {
  size_t chars = 0;
  for (unsigned char c : s) chars += (c & 0xC0) != 0x80;
  return s + std::string(chars < width ? width - chars : 0, ' ');
}

}  // namespace

void figure_table::print() const {
  std::printf("\n%-58s %-7s %-12s %10s %-6s  %-28s %s\n", "figure", "app", "subject", "median", "unit", "runs", "target / berth÷subject");
  for (auto& r : rows_) {
    std::string runs;
    for (double v : r.runs) runs += (runs.empty() ? "" : " ") + (std::isnan(v) ? std::string("-") : fmt_num(v));
    std::string extra = r.target;
    if (r.subject != "berth")
      for (auto& b : rows_)
        if (b.subject == "berth" && b.figure == r.figure && b.app == r.app) {
          double ratio = median(b.runs) / median(r.runs);
          if (std::isfinite(ratio)) extra = "berth/" + r.subject + " = " + fmt_num(ratio) + "x";
        }
    std::printf("%s %-7s %-12s %10s %-6s  %-28s %s\n", padded(r.figure, 58).c_str(), r.app.c_str(), r.subject.c_str(),
                fmt_num(median(r.runs)).c_str(), r.unit.c_str(), runs.c_str(), extra.c_str());
    if (!r.notes.empty()) std::printf("    %s\n", r.notes.c_str());
  }
  std::fflush(stdout);
}

json figure_table::to_json(const std::string& bench) const {
  json rows = json::array();
  for (auto& r : rows_) rows.push_back(r.to_json());
  return {{"bench", bench}, {"date", iso_now()}, {"machine", machine()}, {"rows", rows}};
}

std::string fmt_num(double v) {
  if (std::isnan(v)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, std::fabs(v) >= 100 ? "%.0f" : std::fabs(v) >= 10 ? "%.1f" : "%.3g", v);
  return buf;
}

}  // namespace berth::bench
