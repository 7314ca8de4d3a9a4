#include "bench/common/switch_report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "bench/common/berth_bench.hpp"

namespace berth::bench {

using json = nlohmann::json;

namespace {

std::string fmt(double x, int prec = 1) {
  if (std::isnan(x)) return "-";
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", prec, x);
  return b;
}

template <class F>
double median_of(const std::vector<kind_figures>& runs, F f) {
  std::vector<double> v;
  for (auto& r : runs) v.push_back(static_cast<double>(f(r)));
  return median(v);
}

// "3 (2/3/7)": the median and each run's value (just the value with one run).
template <class F>
std::string with_runs(const std::vector<kind_figures>& runs, F f) {
  std::string s = fmt(median_of(runs, f), 0);
  if (runs.size() < 2) return s;
  s += " (";
  for (size_t i = 0; i < runs.size(); ++i) s += (i ? "/" : "") + std::to_string(static_cast<uint64_t>(f(runs[i])));
  return s + ")";
}

}  // namespace

void switch_results::add(const std::string& mode, const std::string& scenario, int, const std::vector<kind_figures>& figures,
                         const std::vector<double>& deploy_ms) {
  for (auto& f : figures) {
    key k{mode, scenario, f.kind};
    if (!cells_.count(k)) order_.push_back(k);
    cells_[k].push_back(f);
  }
  auto& d = deploy_ms_[{mode, scenario}];
  d.insert(d.end(), deploy_ms.begin(), deploy_ms.end());
}

void switch_results::print_run(const std::string& mode, const std::string& scenario, int run) const {
  std::printf("  run %d %s %s:\n", run + 1, mode.c_str(), scenario.c_str());
  for (auto& k : order_) {
    if (std::get<0>(k) != mode || std::get<1>(k) != scenario) continue;
    auto& runs = cells_.at(k);
    if (static_cast<int>(runs.size()) <= run) continue;
    std::printf("    %-16s %s\n", std::get<2>(k).c_str(), runs[run].to_json().dump().c_str());
  }
  std::fflush(stdout);
}

void switch_results::print_table(const std::vector<std::string>& modes) const {
  std::printf("\n%-19s %-9s %-15s %-8s %7s %-12s %-12s %-9s %7s %7s %8s %9s\n", "mode", "deploys of", "client", "proto",
              "reqs", "failed", "unexp.close", "clean", "p50 ms", "p99 ms", "stall ms", "deploy ms");
  for (auto& mode : modes)
    for (auto& k : order_) {
      if (std::get<0>(k) != mode) continue;
      auto& runs = cells_.at(k);
      auto& scen = std::get<1>(k);
      std::printf("%-19s %-9s %-15s %-8s %7s %-12s %-12s %-9s %7s %7s %8s %9s\n", mode.c_str(),
                  scen == "own" ? "A (own)" : "B (neigh)", std::get<2>(k).c_str(), runs.back().protocol.c_str(),
                  fmt(median_of(runs, [](auto& r) { return r.requests; }), 0).c_str(),
                  with_runs(runs, [](auto& r) { return r.failed; }).c_str(),
                  with_runs(runs, [](auto& r) { return r.unexpected_closes; }).c_str(),
                  with_runs(runs, [](auto& r) { return r.clean_closes; }).c_str(),
                  fmt(median_of(runs, [](auto& r) { return r.p50; }), 2).c_str(),
                  fmt(median_of(runs, [](auto& r) { return r.p99; }), 2).c_str(),
                  fmt(median_of(runs, [](auto& r) { return r.longest_stall_ms; }), 0).c_str(),
                  fmt(median(deploy_ms_.at({mode, scen})), 0).c_str());
    }
  std::fflush(stdout);
}

void switch_results::print_crashes() const {
  if (crashes.empty()) return;
  std::printf("\ncrashes (new-connection GET every 10 ms per route, counted from the kill; median (per run)):\n");
  // mode, what, route -> the runs' figures (crashes are stored run by run)
  std::map<std::tuple<std::string, std::string, std::string>, std::vector<json>> routes;
  std::map<std::pair<std::string, std::string>, std::vector<double>> restarted;
  std::vector<std::tuple<std::string, std::string, std::string>> order;
  for (auto& c : crashes)
    for (const char* what : {"router_kill", "berth_kill"}) {
      if (!c.contains(what)) continue;
      auto& x = c[what];
      restarted[{c.value("mode", ""), what}].push_back(
          x.value(std::string(what) == "router_kill" ? "restarted_running_ms" : "restarted_ready_ms", -1.0));
      for (auto& r : x["routes"]) {
        std::tuple<std::string, std::string, std::string> k{c.value("mode", ""), what, r.value("route", "")};
        if (!routes.count(k)) order.push_back(k);
        routes[k].push_back(r);
      }
    }
  std::stable_sort(order.begin(), order.end(), [](auto& a, auto& b) { return std::get<0>(a) < std::get<0>(b); });
  auto runs_of = [](const std::vector<json>& v, const char* field) {
    std::vector<double> xs;
    for (auto& r : v) xs.push_back(r.value(field, 0.0));
    std::string s = fmt(median(xs), 0);
    if (xs.size() > 1) {
      s += " (";
      for (size_t i = 0; i < xs.size(); ++i) s += (i ? "/" : "") + fmt(xs[i], 0);
      s += ")";
    }
    return s;
  };
  std::printf("  %-19s %-11s %-11s %-18s %-18s %-20s %-16s %s\n", "mode", "killed", "route", "restarted ms",
              "failed", "recovered after ms", "slowest ok ms", "first failure");
  for (auto& k : order) {
    auto& v = routes.at(k);
    std::vector<json> rs;
    for (auto ms : restarted.at({std::get<0>(k), std::get<1>(k)})) rs.push_back({{"x", ms}});
    std::string first;
    for (auto& r : v)
      if (first.empty()) first = r.value("first_error", "");
    std::printf("  %-19s %-11s %-11s %-18s %-18s %-20s %-16s %s\n", std::get<0>(k).c_str(),
                std::get<1>(k) == "router_kill" ? "router" : "berth", std::get<2>(k).c_str(), runs_of(rs, "x").c_str(),
                runs_of(v, "failed").c_str(), runs_of(v, "recovery_ms").c_str(), runs_of(v, "slowest_ok_ms").c_str(),
                first.c_str());
  }
  std::fflush(stdout);
}

void switch_results::print_errors() const {
  bool any = false;
  for (auto& k : order_) {
    auto& runs = cells_.at(k);
    for (size_t i = 0; i < runs.size(); ++i) {
      if (runs[i].errors.empty()) continue;
      if (!any) std::printf("\nwhat the clients saw (failures and unexpected closes, first 5 per cell and run):\n");
      any = true;
      std::printf("  %s %s %s, run %zu:\n", std::get<0>(k).c_str(), std::get<1>(k).c_str(), std::get<2>(k).c_str(), i + 1);
      for (size_t e = 0; e < runs[i].errors.size() && e < 5; ++e) std::printf("    %s\n", runs[i].errors[e].c_str());
    }
  }
  if (!any) std::printf("\nno client saw a failure or an unexpected close\n");
  std::fflush(stdout);
}

json switch_results::to_json() const {
  json cells = json::array();
  for (auto& k : order_) {
    auto& runs = cells_.at(k);
    json per_run = json::array();
    for (auto& r : runs) per_run.push_back(r.to_json());
    auto r2 = [](double x) { return std::isnan(x) ? json(nullptr) : json(std::round(x * 100) / 100); };
    cells.push_back({{"mode", std::get<0>(k)},
                     {"scenario", std::get<1>(k)},
                     {"kind", std::get<2>(k)},
                     {"median",
                      {{"requests", r2(median_of(runs, [](auto& r) { return r.requests; }))},
                       {"failed", r2(median_of(runs, [](auto& r) { return r.failed; }))},
                       {"unexpected_closes", r2(median_of(runs, [](auto& r) { return r.unexpected_closes; }))},
                       {"clean_closes", r2(median_of(runs, [](auto& r) { return r.clean_closes; }))},
                       {"p50_ms", r2(median_of(runs, [](auto& r) { return r.p50; }))},
                       {"p99_ms", r2(median_of(runs, [](auto& r) { return r.p99; }))},
                       {"longest_stall_ms", r2(median_of(runs, [](auto& r) { return r.longest_stall_ms; }))},
                       {"deploy_ms", r2(median(deploy_ms_.at({std::get<0>(k), std::get<1>(k)})))}}},
                     {"runs", per_run}});
  }
  return {{"bench", "switch"}, {"cells", cells}, {"crashes", crashes}};
}

}  // namespace berth::bench
