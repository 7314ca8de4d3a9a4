// The metrics registry's text format (runtime/metrics/registry.hpp): exact output for each
// kind, escaping, histogram buckets, and the refusals that keep the output valid.
#include <catch2/catch.hpp>

#include <cmath>
#include <stdexcept>
#include <thread>
#include <vector>

#include "runtime/metrics/registry.hpp"

using namespace berth::metrics;

TEST_CASE("metrics registry: counters and gauges render with HELP, TYPE and sorted series", "[metrics]") {
  registry r;
  auto& c = r.counters("app_requests_total", "Requests answered", {"method", "status"});
  c.with({"GET", "200"}).inc();
  c.with({"GET", "200"}).inc(2);
  c.with({"DELETE", "404"}).inc();
  c.with({"GET", "200"}).inc(-5);  // a counter never goes down
  auto& g = r.gauges("app_open", "Open things").with();
  g.set(3);
  g.add(-1.5);
  CHECK(r.render() ==
        "# HELP app_requests_total Requests answered\n"
        "# TYPE app_requests_total counter\n"
        "app_requests_total{method=\"DELETE\",status=\"404\"} 1\n"
        "app_requests_total{method=\"GET\",status=\"200\"} 3\n"
        "# HELP app_open Open things\n"
        "# TYPE app_open gauge\n"
        "app_open 1.5\n");
}

TEST_CASE("metrics registry: label values and help text are escaped", "[metrics]") {
  registry r;
  r.gauges("g", "a \\ backslash\nand a newline", {"v"}).with({"say \"hi\"\\\n"}).set(1);
  CHECK(r.render() ==
        "# HELP g a \\\\ backslash\\nand a newline\n"
        "# TYPE g gauge\n"
        "g{v=\"say \\\"hi\\\"\\\\\\n\"} 1\n");
  CHECK(escape_label_value("plain") == "plain");
}

TEST_CASE("metrics registry: histograms have cumulative buckets, +Inf, _sum and _count", "[metrics]") {
  registry r;
  auto& h = r.histograms("op_duration_seconds", "How long", {"op"}, {0.25, 1, 2.5});
  auto& s = h.with({"x"});
  for (double v : {0.125, 0.25, 0.5, 3.0, 100.0}) s.observe(v);  // 0.25 falls in le="0.25"
  CHECK(r.render() ==
        "# HELP op_duration_seconds How long\n"
        "# TYPE op_duration_seconds histogram\n"
        "op_duration_seconds_bucket{op=\"x\",le=\"0.25\"} 2\n"
        "op_duration_seconds_bucket{op=\"x\",le=\"1\"} 3\n"
        "op_duration_seconds_bucket{op=\"x\",le=\"2.5\"} 3\n"
        "op_duration_seconds_bucket{op=\"x\",le=\"+Inf\"} 5\n"
        "op_duration_seconds_sum{op=\"x\"} 103.875\n"
        "op_duration_seconds_count{op=\"x\"} 5\n");
}

TEST_CASE("metrics registry: values print as Prometheus reads them", "[metrics]") {
  CHECK(format_value(0) == "0");
  CHECK(format_value(42) == "42");
  CHECK(format_value(0.005) == "0.005");
  CHECK(format_value(INFINITY) == "+Inf");
  CHECK(format_value(-INFINITY) == "-Inf");
  CHECK(format_value(NAN) == "NaN");
}

TEST_CASE("metrics registry: invalid names, labels and bounds are refused at registration", "[metrics]") {
  registry r;
  CHECK_THROWS_AS(r.counters("bad-name_total", "x"), std::invalid_argument);
  CHECK_THROWS_AS(r.gauges("g", "x", {"__reserved"}), std::invalid_argument);
  CHECK_THROWS_AS(r.histograms("h", "x", {"le"}, {1}), std::invalid_argument);  // le is the histogram's
  CHECK_THROWS_AS(r.histograms("h2", "x", {}, {2, 1}), std::invalid_argument);
  r.gauges("dup", "x");
  CHECK_THROWS_AS(r.counters("dup", "x"), std::invalid_argument);
  auto& f = r.gauges("two", "x", {"a", "b"});
  CHECK_THROWS_AS(f.with({"only one"}), std::invalid_argument);
}

TEST_CASE("metrics registry: concurrent recording loses nothing", "[metrics]") {
  registry r;
  auto& c = r.counters("n_total", "x", {"t"});
  auto& h = r.histograms("d", "x", {}, {1}).with();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10000; ++i) {
        c.with({std::to_string(i % 3)}).inc();
        h.observe(t % 2 ? 0.5 : 2);
      }
    });
  for (auto& t : threads) t.join();
  CHECK(c.with({"0"}).value() + c.with({"1"}).value() + c.with({"2"}).value() == 40000);
  auto snap = h.read();
  CHECK(snap.cumulative == std::vector<uint64_t>{20000, 40000});
  CHECK(snap.sum == 20000 * 0.5 + 20000 * 2.0);
}

TEST_CASE("metrics registry: collectors run before each render", "[metrics]") {
  registry r;
  auto& g = r.gauges("scraped", "x").with();
  int runs = 0;
  r.on_scrape([&] { g.set(++runs); });
  CHECK(r.render().find("scraped 1\n") != std::string::npos);
  CHECK(r.render().find("scraped 2\n") != std::string::npos);
}
