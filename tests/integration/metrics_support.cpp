#include "tests/integration/metrics_support.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <set>
#include <vector>

namespace berth::it {

namespace {

using labels_t = std::map<std::string, std::string>;

std::string escape(const std::string& v) {
  std::string out;
  for (char c : v) out += c == '\\' ? "\\\\" : c == '"' ? "\\\"" : c == '\n' ? "\\n" : std::string(1, c);
  return out;
}

std::string unescape(const std::string& v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] != '\\') { out += v[i]; continue; }
    char n = v[++i];
    out += n == 'n' ? '\n' : n;
  }
  return out;
}

bool parse_value(const std::string& s, double& out) {
  if (s == "+Inf") return out = INFINITY, true;
  if (s == "-Inf") return out = -INFINITY, true;
  if (s == "NaN") return out = NAN, true;
  if (s.empty()) return false;
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && !std::isnan(out) && !std::isinf(out);
}

// The family a sample belongs to: histograms own name_bucket/_sum/_count.
std::string family_of(const std::string& name, const std::map<std::string, std::string>& types, std::string& suffix) {
  for (auto s : {"_bucket", "_sum", "_count"}) {
    std::string sfx = s;
    if (name.size() > sfx.size() && name.compare(name.size() - sfx.size(), sfx.size(), sfx) == 0) {
      auto base = name.substr(0, name.size() - sfx.size());
      if (auto t = types.find(base); t != types.end() && t->second == "histogram") {
        suffix = sfx;
        return base;
      }
    }
  }
  suffix.clear();
  return name;
}

struct hist_series {
  std::vector<std::pair<double, double>> buckets;  // le, cumulative count
  bool has_sum = false, has_count = false;
  double count = 0;
};

}  // namespace

std::string series(const std::string& name, const labels_t& labels) {
  std::string out;
  for (auto& [k, v] : labels) out += (out.empty() ? "" : ",") + k + "=\"" + escape(v) + "\"";
  return labels.empty() ? name : name + "{" + out + "}";
}

double scrape::value(const std::string& name, const labels_t& labels) const {
  auto it = samples.find(series(name, labels));
  return it == samples.end() ? NAN : it->second;
}

bool scrape::has(const std::string& name, const labels_t& labels) const {
  return samples.count(series(name, labels)) != 0;
}

std::string parse_metrics(const std::string& text, scrape* out) {
  static const std::regex help_re(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*))");
  static const std::regex type_re(R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped))");
  static const std::regex sample_re(R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: (-?[0-9]+))?)");
  static const std::regex label_re(R"xx(([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$))xx");
  if (text.empty() || text.back() != '\n') return "the text must end with a newline";
  std::set<std::string> helped, finished_families;
  std::string current;  // the family whose lines come now
  std::map<std::string, hist_series> hists;
  size_t line_no = 0, start = 0;
  auto enter = [&](const std::string& family) -> std::string {
    if (family == current) return "";
    if (finished_families.count(family)) return "family " + family + " is interleaved with another";
    if (!current.empty()) finished_families.insert(current);
    current = family;
    return "";
  };
  while (start < text.size()) {
    auto end = text.find('\n', start);
    auto line = text.substr(start, end - start);
    start = end + 1;
    ++line_no;
    auto at = [&](const std::string& why) { return "line " + std::to_string(line_no) + ": " + why + ": " + line; };
    std::smatch m;
    if (line.empty()) return at("empty line");
    if (line[0] == '#') {
      if (std::regex_match(line, m, help_re)) {
        if (!helped.insert(m[1]).second) return at("second HELP");
        if (auto e = enter(m[1]); !e.empty()) return at(e);
      } else if (std::regex_match(line, m, type_re)) {
        if (out->types.count(m[1])) return at("second TYPE");
        if (auto e = enter(m[1]); !e.empty()) return at(e);
        out->types[m[1]] = m[2];
      } else if (line.rfind("# HELP", 0) == 0 || line.rfind("# TYPE", 0) == 0) {
        return at("malformed HELP/TYPE");
      }
      continue;
    }
    if (!std::regex_match(line, m, sample_re)) return at("malformed sample");
    std::string name = m[1], suffix;
    auto family = family_of(name, out->types, suffix);
    auto type = out->types.find(family);
    if (type == out->types.end()) return at("sample without a TYPE before it");
    if (auto e = enter(family); !e.empty()) return at(e);
    labels_t labels;
    std::string rest = m[2];
    for (size_t pos = 0; pos < rest.size();) {
      std::smatch lm;
      auto from = rest.cbegin() + static_cast<std::ptrdiff_t>(pos);
      if (!std::regex_search(from, rest.cend(), lm, label_re, std::regex_constants::match_continuous))
        return at("malformed labels");
      if (!labels.emplace(lm[1], unescape(lm[2])).second) return at("label given twice");
      pos += static_cast<size_t>(lm.length(0));
    }
    double v = 0;
    if (!parse_value(m[3], v)) return at("malformed value");
    auto key = series(name, labels);
    if (out->samples.count(key)) return at("duplicate series");
    out->samples[key] = v;
    if (type->second == "counter") {
      if (v < 0) return at("negative counter");
      if (name.size() < 6 || name.compare(name.size() - 6, 6, "_total") != 0) return at("counter not named *_total");
    }
    if (type->second != "histogram") continue;
    if (suffix.empty()) return at("histogram sample without _bucket/_sum/_count");
    auto le = labels.find("le");
    if ((suffix == "_bucket") != (le != labels.end())) return at("le on a histogram's _bucket only");
    double bound = 0;
    if (le != labels.end() && !parse_value(le->second, bound) && le->second != "+Inf") return at("bad le");
    if (le != labels.end()) labels.erase(le);
    auto& h = hists[series(family, labels)];
    if (suffix == "_bucket") {
      if (!h.buckets.empty() && (bound <= h.buckets.back().first || v < h.buckets.back().second))
        return at("buckets must have increasing le and cumulative counts");
      h.buckets.emplace_back(bound, v);
    } else if (suffix == "_sum") {
      h.has_sum = true;
    } else {
      h.has_count = true;
      h.count = v;
    }
  }
  for (auto& [key, h] : hists) {
    if (h.buckets.empty() || !std::isinf(h.buckets.back().first)) return key + ": no +Inf bucket";
    if (!h.has_sum || !h.has_count) return key + ": _sum or _count missing";
    if (h.buckets.back().second != h.count) return key + ": the +Inf bucket is not _count";
  }
  return "";
}

std::string promtool_problems(const std::string& text) {
  char path[] = "/tmp/berth-metrics-XXXXXX";
  int fd = ::mkstemp(path);
  if (fd < 0) return "cannot make a temp file";
  ::close(fd);
  std::ofstream(path) << text;
  std::string cmd = std::string("promtool check metrics < ") + path + " 2>&1";
  std::string said;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return "cannot run promtool";
  char buf[4096];
  while (auto n = std::fread(buf, 1, sizeof buf, p)) said.append(buf, n);
  int rc = ::pclose(p);
  std::remove(path);
  if (rc != 0 || !said.empty()) return "promtool exit " + std::to_string(rc) + ": " + said;
  return "";
}

}  // namespace berth::it
