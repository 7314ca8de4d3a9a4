// A small metrics registry: counters, gauges and histograms with labels, rendered in the
// Prometheus text exposition format 0.0.4. No actor code; thread-safe; no globals (one registry
// is made where the actor tree is made and handed to whatever records).
//
// Hot paths are atomics: recording into a series takes no lock (find one takes a shared lock;
// only the first use of a new label set takes the family's mutex exclusively). A series, once
// made, lives as long as the registry, so callers may keep the reference that with() returns.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

namespace berth::metrics {

using label_values = std::vector<std::string>;

// Only goes up (by >= 0); a negative step is ignored.
class counter {
 public:
  void inc(double by = 1);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class gauge {
 public:
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  void add(double by);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Counts observations into buckets by upper bound (le), plus their sum.
class histogram {
 public:
  explicit histogram(std::vector<double> bounds);  // sorted ascending, +Inf implied
  void observe(double v);
  struct snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> cumulative;  // one per bound, then +Inf (= count)
    double sum = 0;
  };
  snapshot read() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // per bucket, not cumulative; last = +Inf
  std::atomic<double> sum_{0};
};

enum class kind : uint8_t { counter, gauge, histogram };

// One metric name with its help text, label names and series (one per label set).
template <class Series>
class family {
 public:
  // The series of these label values (as many as the family has label names), made on first use.
  Series& with(const label_values& values);
  Series& with() { return with(label_values{}); }  // a family without labels

  const std::string& name() const { return name_; }

 private:
  friend class registry;
  family(std::string name, std::string help, std::vector<std::string> labels,
         std::function<std::unique_ptr<Series>()> make);
  std::string name_, help_;
  std::vector<std::string> labels_;
  std::function<std::unique_ptr<Series>()> make_;
  mutable std::shared_mutex mu_;
  std::map<label_values, std::unique_ptr<Series>> series_;
};

class registry {
 public:
  registry() = default;
  registry(const registry&) = delete;
  registry& operator=(const registry&) = delete;

  // Registers a family; names and label names must follow Prometheus' rules and be unique
  // (std::invalid_argument otherwise: a programming error). The reference lives as long as this.
  family<counter>& counters(const std::string& name, const std::string& help, std::vector<std::string> labels = {});
  family<gauge>& gauges(const std::string& name, const std::string& help, std::vector<std::string> labels = {});
  family<histogram>& histograms(const std::string& name, const std::string& help, std::vector<std::string> labels,
                                std::vector<double> bounds);

  // Runs before each render (e.g. to set gauges computed at scrape time); must not block long.
  void on_scrape(std::function<void()> collect);
  // Every family in registration order, series sorted by label values, after the collectors ran.
  std::string render();

 private:
  void check_new(const std::string& name, const std::vector<std::string>& labels);
  std::mutex mu_;
  std::vector<std::pair<kind, void*>> order_;
  std::vector<std::unique_ptr<family<counter>>> counters_;
  std::vector<std::unique_ptr<family<gauge>>> gauges_;
  std::vector<std::unique_ptr<family<histogram>>> histograms_;
  std::vector<std::function<void()>> collectors_;
};

// Text format helpers (exposed for tests): HELP escapes \ and newline; a label value also ".
std::string escape_help(const std::string& s);
std::string escape_label_value(const std::string& s);
// A sample value: shortest round-trip decimal, "+Inf", "-Inf" or "NaN".
std::string format_value(double v);

}  // namespace berth::metrics
