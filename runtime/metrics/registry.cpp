#include "runtime/metrics/registry.hpp"

#include <algorithm>
#include <cmath>
#include <regex>
#include <stdexcept>

#include <fmt/format.h>

namespace berth::metrics {

namespace {

void atomic_add(std::atomic<double>& a, double by) {
  double old = a.load(std::memory_order_relaxed);
  while (!a.compare_exchange_weak(old, old + by, std::memory_order_relaxed)) {
  }
}

bool valid_metric_name(const std::string& s) {
  static const std::regex re("[a-zA-Z_:][a-zA-Z0-9_:]*");
  return std::regex_match(s, re);
}

// Label names starting with "__" are reserved to Prometheus; "le" is the histogram's own.
bool valid_label_name(const std::string& s) {
  static const std::regex re("[a-zA-Z_][a-zA-Z0-9_]*");
  return std::regex_match(s, re) && s.rfind("__", 0) != 0 && s != "le";
}

std::string labels_text(const std::vector<std::string>& names, const label_values& values,
                        const std::string& extra = "") {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i)
    out += fmt::format("{}{}=\"{}\"", out.empty() ? "" : ",", names[i], escape_label_value(values[i]));
  if (!extra.empty()) out += (out.empty() ? "" : ",") + extra;
  return out.empty() ? "" : "{" + out + "}";
}

const char* type_name(kind k) {
  switch (k) {
    case kind::counter: return "counter";
    case kind::gauge: return "gauge";
    default: return "histogram";
  }
}

void render_head(std::string& out, const std::string& name, const std::string& help, kind k) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, escape_help(help), name, type_name(k));
}

}  // namespace

void counter::inc(double by) {
  if (by > 0) atomic_add(value_, by);
}

void gauge::add(double by) { atomic_add(value_, by); }

histogram::histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  if (!std::is_sorted(bounds_.begin(), bounds_.end()) ||
      std::adjacent_find(bounds_.begin(), bounds_.end()) != bounds_.end())
    throw std::invalid_argument("histogram bounds must be strictly increasing");
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0);
}

void histogram::observe(double v) {
  auto i = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  atomic_add(sum_, v);
}

histogram::snapshot histogram::read() const {
  snapshot s{bounds_, {}, sum_.load(std::memory_order_relaxed)};
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    total += counts_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(total);
  }
  return s;
}

template <class Series>
family<Series>::family(std::string name, std::string help, std::vector<std::string> labels,
                       std::function<std::unique_ptr<Series>()> make)
    : name_(std::move(name)), help_(std::move(help)), labels_(std::move(labels)), make_(std::move(make)) {}

template <class Series>
Series& family<Series>::with(const label_values& values) {
  if (values.size() != labels_.size())
    throw std::invalid_argument(fmt::format("{}: {} label values for {} labels", name_, values.size(), labels_.size()));
  {
    std::shared_lock lock(mu_);
    if (auto it = series_.find(values); it != series_.end()) return *it->second;
  }
  std::unique_lock lock(mu_);
  auto& slot = series_[values];
  if (!slot) slot = make_();
  return *slot;
}

template class family<counter>;
template class family<gauge>;
template class family<histogram>;

void registry::check_new(const std::string& name, const std::vector<std::string>& labels) {
  if (!valid_metric_name(name)) throw std::invalid_argument("invalid metric name: " + name);
  for (auto& l : labels)
    if (!valid_label_name(l)) throw std::invalid_argument(name + ": invalid label name: " + l);
  auto taken = [&](auto& families) {
    return std::any_of(families.begin(), families.end(), [&](auto& f) { return f->name() == name; });
  };
  if (taken(counters_) || taken(gauges_) || taken(histograms_))
    throw std::invalid_argument("metric registered twice: " + name);
}

family<counter>& registry::counters(const std::string& name, const std::string& help,
                                    std::vector<std::string> labels) {
  std::lock_guard lock(mu_);
  check_new(name, labels);
  counters_.emplace_back(
      new family<counter>(name, help, std::move(labels), [] { return std::make_unique<counter>(); }));
  order_.emplace_back(kind::counter, counters_.back().get());
  return *counters_.back();
}

family<gauge>& registry::gauges(const std::string& name, const std::string& help, std::vector<std::string> labels) {
  std::lock_guard lock(mu_);
  check_new(name, labels);
  gauges_.emplace_back(new family<gauge>(name, help, std::move(labels), [] { return std::make_unique<gauge>(); }));
  order_.emplace_back(kind::gauge, gauges_.back().get());
  return *gauges_.back();
}

family<histogram>& registry::histograms(const std::string& name, const std::string& help,
                                        std::vector<std::string> labels, std::vector<double> bounds) {
  std::lock_guard lock(mu_);
  check_new(name, labels);
  histogram probe{bounds};  // checks the bounds now, not at first use
  histograms_.emplace_back(
      new family<histogram>(name, help, std::move(labels), [bounds] { return std::make_unique<histogram>(bounds); }));
  order_.emplace_back(kind::histogram, histograms_.back().get());
  return *histograms_.back();
}

void registry::on_scrape(std::function<void()> collect) {
  std::lock_guard lock(mu_);
  collectors_.push_back(std::move(collect));
}

std::string registry::render() {
  std::lock_guard lock(mu_);
  for (auto& c : collectors_) c();
  std::string out;
  for (auto& [k, ptr] : order_) {
    if (k == kind::histogram) {
      auto& f = *static_cast<family<histogram>*>(ptr);
      render_head(out, f.name_, f.help_, k);
      std::shared_lock series_lock(f.mu_);
      for (auto& [values, h] : f.series_) {
        auto s = h->read();
        for (size_t i = 0; i < s.cumulative.size(); ++i) {
          auto le = i < s.bounds.size() ? format_value(s.bounds[i]) : "+Inf";
          out += fmt::format("{}_bucket{} {}\n", f.name_, labels_text(f.labels_, values, "le=\"" + le + "\""),
                             s.cumulative[i]);
        }
        out += fmt::format("{}_sum{} {}\n", f.name_, labels_text(f.labels_, values), format_value(s.sum));
        out += fmt::format("{}_count{} {}\n", f.name_, labels_text(f.labels_, values), s.cumulative.back());
      }
      continue;
    }
    auto emit = [&](auto& f) {
      render_head(out, f.name_, f.help_, k);
      std::shared_lock series_lock(f.mu_);
      for (auto& [values, s] : f.series_)
        out += fmt::format("{}{} {}\n", f.name_, labels_text(f.labels_, values), format_value(s->value()));
    };
    if (k == kind::counter)
      emit(*static_cast<family<counter>*>(ptr));
    else
      emit(*static_cast<family<gauge>*>(ptr));
  }
  return out;
}

std::string escape_help(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string escape_label_value(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"') out += "\\\"";
    else if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

}  // namespace berth::metrics
