// bench_switch's results: the figures of every run per mode x scenario x client kind, their
// medians, the crash measurements, and how they are printed (a table, the failures' own
// descriptions) and written (one JSON document).
#pragma once
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/common/switch_clients.hpp"

namespace berth::bench {

class switch_results {
 public:
  // Keeps one run's figures of one scenario ("own" / "neighbour") and its deploy durations.
  void add(const std::string& mode, const std::string& scenario, int run, const std::vector<kind_figures>& figures,
           const std::vector<double>& deploy_ms);
  // One scenario of one run, as it ended (--verbose).
  void print_run(const std::string& mode, const std::string& scenario, int run) const;
  // The medians over the runs, with each run's failures and unexpected closes in brackets.
  void print_table(const std::vector<std::string>& modes) const;
  void print_crashes() const;
  // Every failure / unexpected close a client described (first 5 per cell and run).
  void print_errors() const;
  nlohmann::json to_json() const;
  std::vector<nlohmann::json> crashes;  // run_crash's results, one per mode

 private:
  using key = std::tuple<std::string, std::string, std::string>;  // mode, scenario, kind
  std::map<key, std::vector<kind_figures>> cells_;                // one entry per run
  std::map<std::pair<std::string, std::string>, std::vector<double>> deploy_ms_;
  std::vector<key> order_;  // first-seen order, for printing
};

}  // namespace berth::bench
