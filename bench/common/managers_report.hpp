// bench_managers' figures as the shared bench rows (see bench/README.md): one row per figure,
// subject and app, with every run's value and their median; printed as a table and written as
// {"bench", "date", "machine", "rows"} JSON for bench/results.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace berth::bench {

// "0.812", "33.4", "2570": three significant figures, "-" for NAN.
std::string fmt_num(double v);

struct figure_row {
  std::string figure, subject, app, unit, target, notes;
  std::vector<double> runs;  // NAN for a run that did not get the figure (said in notes)
  nlohmann::json to_json() const;
};

// The table of rows, found by (figure, subject, app); add() creates a row on first use.
class figure_table {
 public:
  figure_row& row(const std::string& figure, const std::string& subject, const std::string& app,
                  const std::string& unit, const std::string& target = "");
  void add(const std::string& figure, const std::string& subject, const std::string& app, const std::string& unit,
           double value, const std::string& target = "");
  void note(const std::string& figure, const std::string& subject, const std::string& app, const std::string& text);
  // Human table on stdout: figure, app, subject, median, runs, target, notes; ratios berth/peer
  // for the same figure and app.
  void print() const;
  // The shared JSON document (machine: cpus, model, kernel, mem_mb from /proc and uname).
  nlohmann::json to_json(const std::string& bench) const;

 private:
  std::vector<figure_row> rows_;
};

}  // namespace berth::bench
