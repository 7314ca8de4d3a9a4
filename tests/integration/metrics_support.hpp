// Helpers for the metrics tests (test_metrics.cpp): a strict reader of the Prometheus text
// format 0.0.4 that berth's GET /metrics must produce, and promtool's opinion of it.
#pragma once
#include <map>
#include <string>

namespace berth::it {

// The samples of one scrape, by canonical series key (see series()).
struct scrape {
  std::map<std::string, double> samples;
  std::map<std::string, std::string> types;  // family name -> counter | gauge | histogram
  // The value of a series; NaN when it is absent.
  double value(const std::string& name, const std::map<std::string, std::string>& labels = {}) const;
  bool has(const std::string& name, const std::map<std::string, std::string>& labels = {}) const;
};

// "name{k1=\"v1\",k2=\"v2\"}" with the labels sorted by name (escaped as in the format); "name"
// without labels.
std::string series(const std::string& name, const std::map<std::string, std::string>& labels = {});

// Parses `text` strictly: every sample of a declared family (TYPE before its samples, families
// not interleaved, HELP and TYPE at most once), label syntax and escapes, values, no duplicate
// series, counters >= 0 and named *_total, histograms with increasing `le`, cumulative buckets,
// a +Inf bucket equal to _count, and a _sum. Returns "" and fills *out, or the first problem
// (with its line).
std::string parse_metrics(const std::string& text, scrape* out);

// Runs `promtool check metrics` on `text`: "" when it exits 0 and prints nothing (its lint
// warnings count as problems), else what it said.
std::string promtool_problems(const std::string& text);

}  // namespace berth::it
