// The shared bench row format (one JSON file per bench, merged by bench/report.py into
// bench/results/latest.md): {"bench", "date", "machine", "rows": [...]}, see bench/README.md.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace berth::bench {

// One figure of one subject: the median of `runs` (NAN runs are dropped; no run: median null).
// Used by bench_scale and the file benchmarks (bench_packaging, bench_workspace, ...).
struct figure_row {
  std::string figure;          // the row name, e.g. "GET a project (wrk, loopback): req/s"
  std::string subject = "berth";
  std::string app = "-";       // native|python|node|-
  std::string unit;            // s|ms|MB|events/s|req/s|%|count|status
  std::vector<double> runs;
  std::string target;          // e.g. "<= 64 MB"; "" when none
  std::string notes;
};

// A berth row of `unit` with no runs yet.
figure_row berth_row(std::string figure, std::string unit, std::string target, std::string notes);

// {"cpus", "model", "kernel", "mem_mb", "loadavg"} of this machine (/proc/cpuinfo, uname, /proc/meminfo).
nlohmann::json machine_json();

// Writes {"bench": name, "date": now (ISO-8601 UTC), "machine", "rows"} to `path` (atomically:
// a temp file renamed). False (and *error) when it cannot.
bool write_rows(const std::string& path, const std::string& bench, const std::vector<figure_row>& rows,
                std::string* error);

// One line per row on stdout: figure, median, unit, min and max of the runs.
void print_rows(const std::vector<figure_row>& rows);

}  // namespace berth::bench
