#include "runtime/resilience/breaker.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "messages/event.hpp"
#include "runtime/resilience/faults.hpp"

namespace berth {

namespace {

constexpr const char* unavailable_marker = "backend unavailable: ";

int64_t wall_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string seconds_text(std::chrono::milliseconds d) {
  return fmt::format("{:.1f} s", std::max<int64_t>(d.count(), 0) / 1000.0);
}

}  // namespace

const char* to_string(breaker_state s) {
  switch (s) {
    case breaker_state::closed: return "closed";
    case breaker_state::open: return "open";
    case breaker_state::half_open: return "half_open";
  }
  return "closed";
}

nlohmann::json to_json(const breaker_snapshot& s) {
  nlohmann::json j{{"state", to_string(s.state)},
                   {"failures", s.consecutive_failures},
                   {"threshold", s.threshold},
                   {"calls", s.calls},
                   {"failures_total", s.failures},
                   {"rejections", s.rejections},
                   {"opened", s.opened},
                   {"last_error", s.last_error.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.last_error)},
                   {"since", iso8601(s.since_us)}};
  if (s.state == breaker_state::open) j["retry_in_ms"] = s.retry_in.count();
  return j;
}

status backend_unavailable(const std::string& backend, const std::string& why) {
  return status::io_error(std::string(unavailable_marker) + why);
}

bool is_backend_unavailable(const status& s) {
  return !s.is_ok() && s.message().find(unavailable_marker) != std::string::npos;
}

// ---- circuit_breaker ----------------------------------------------------------------------

circuit_breaker::circuit_breaker(std::string backend, breaker_settings s, clock_fn now)
    : backend_(std::move(backend)), now_(std::move(now)), settings_(s), since_us_(wall_us()) {}

std::chrono::steady_clock::time_point circuit_breaker::now() const {
  return now_ ? now_() : std::chrono::steady_clock::now();
}

void circuit_breaker::configure(const breaker_settings& s) {
  std::lock_guard<std::mutex> lock(mu_);
  settings_ = s;
  settings_.failures = std::max(settings_.failures, 1);
}

void circuit_breaker::set_listener(breaker_listener l) {
  std::lock_guard<std::mutex> lock(mu_);
  listener_ = std::move(l);
}

void circuit_breaker::move_to(breaker_state to) {
  auto from = state_;
  if (from == to) return;
  state_ = to;
  since_us_ = wall_us();
  if (to == breaker_state::open) {
    opened_at_ = now();
    ++opened_;
  }
  if (to != breaker_state::half_open) trial_running_ = false;
  if (listener_) listener_({backend_, from, to, consecutive_, last_error_});
}

void circuit_breaker::maybe_half_open(std::chrono::steady_clock::time_point t) {
  if (state_ == breaker_state::open && t - opened_at_ >= settings_.open_for) move_to(breaker_state::half_open);
}

status circuit_breaker::call(const std::function<status()>& op, mode m) {
  bool trial = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto t = now();
    maybe_half_open(t);
    if (m == mode::normal && state_ == breaker_state::open) {
      ++rejections_;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(opened_at_ + settings_.open_for - t);
      return backend_unavailable(
          backend_, fmt::format("the {} backend's circuit breaker is open after {} consecutive failures (last: {}); "
                                "it lets a call through again in {}",
                                backend_, consecutive_, last_error_.empty() ? "none" : last_error_, seconds_text(left)));
    }
    if (m == mode::normal && state_ == breaker_state::half_open) {
      if (trial_running_) {
        ++rejections_;
        return backend_unavailable(backend_, fmt::format("the {} backend's circuit breaker is half-open and its "
                                                         "trial call is still running (last error: {})",
                                                         backend_, last_error_.empty() ? "none" : last_error_));
      }
      trial = trial_running_ = true;
    }
    ++calls_;
  }
  status s;
  try {
    s = op();
  } catch (const std::exception& e) {
    finish(trial, status::io_error(std::string("unexpected error: ") + e.what()));
    throw;
  } catch (...) {
    finish(trial, status::io_error("unexpected error"));
    throw;
  }
  finish(trial, s);
  return s;
}

void circuit_breaker::finish(bool trial, const status& s) {
  std::lock_guard<std::mutex> lock(mu_);
  if (trial) trial_running_ = false;
  if (!is_transient(s)) {  // ok, or the backend answered that the request is wrong
    consecutive_ = 0;
    move_to(breaker_state::closed);
    return;
  }
  ++failures_;
  ++consecutive_;
  last_error_ = without_paths(s.message());
  if (state_ == breaker_state::half_open || (state_ == breaker_state::closed && consecutive_ >= settings_.failures))
    move_to(breaker_state::open);
  // Open already (a call admitted earlier, or an essential one, failed): it stays open and
  // its timeout runs on from when it opened.
}

breaker_snapshot circuit_breaker::snapshot() {
  std::lock_guard<std::mutex> lock(mu_);
  auto t = now();
  maybe_half_open(t);
  breaker_snapshot s;
  s.backend = backend_;
  s.state = state_;
  s.consecutive_failures = consecutive_;
  s.threshold = settings_.failures;
  s.calls = calls_;
  s.failures = failures_;
  s.rejections = rejections_;
  s.opened = opened_;
  s.last_error = last_error_;
  s.since_us = since_us_;
  if (state_ == breaker_state::open)
    s.retry_in = std::max(std::chrono::milliseconds(0),
                          std::chrono::duration_cast<std::chrono::milliseconds>(opened_at_ + settings_.open_for - t));
  return s;
}

void circuit_breaker::reset() {
  std::lock_guard<std::mutex> lock(mu_);
  state_ = breaker_state::closed;
  trial_running_ = false;
  consecutive_ = 0;
  calls_ = failures_ = rejections_ = opened_ = 0;
  last_error_.clear();
  since_us_ = wall_us();
}

// ---- registry -----------------------------------------------------------------------------

const std::vector<std::string>& known_backends() {
  static const std::vector<std::string> names{"docker", "process", "proxy"};
  return names;
}

breaker_registry::breaker_registry() {
  for (auto& n : known_backends()) by_name_.emplace(n, std::make_unique<circuit_breaker>(n, settings_));
}

circuit_breaker& breaker_registry::get(const std::string& backend) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_name_.find(backend);
  if (it == by_name_.end()) {
    auto b = std::make_unique<circuit_breaker>(backend, settings_);
    b->set_listener(listener_);
    it = by_name_.emplace(backend, std::move(b)).first;
  }
  return *it->second;
}

void breaker_registry::configure(const breaker_settings& s, const retry_policy& p) {
  std::lock_guard<std::mutex> lock(mu_);
  settings_ = s;
  policy_ = p;
  for (auto& [n, b] : by_name_) b->configure(s);
}

retry_policy breaker_registry::policy() {
  std::lock_guard<std::mutex> lock(mu_);
  return policy_;
}

void breaker_registry::set_listener(breaker_listener l) {
  std::lock_guard<std::mutex> lock(mu_);
  listener_ = std::move(l);
  for (auto& [n, b] : by_name_) b->set_listener(listener_);
}

std::vector<breaker_snapshot> breaker_registry::snapshots() {
  std::vector<circuit_breaker*> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [n, b] : by_name_) all.push_back(b.get());
  }
  std::vector<breaker_snapshot> out;
  for (auto* b : all) out.push_back(b->snapshot());
  return out;
}

void breaker_registry::reset() {
  std::lock_guard<std::mutex> lock(mu_);
  settings_ = {};
  policy_ = {};
  listener_ = {};
  for (auto& [n, b] : by_name_) {
    b->set_listener({});
    b->configure(settings_);
    b->reset();
  }
}

std::string without_paths(const std::string& text) {
  auto ends_token = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\'' || c == '"' || c == ')' || c == ','; };
  auto starts_token = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\'' || c == '"' || c == '(' || c == '=' || c == ':'; };
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (text[i] == '/' && (i == 0 || starts_token(text[i - 1]))) {
      size_t end = i;
      while (end < text.size() && !ends_token(text[end])) ++end;
      auto token = text.substr(i, end - i);
      // A trailing ':' belongs to the message ("open /a/b: No such file").
      size_t keep = token.size();
      while (keep > 0 && (token[keep - 1] == ':' || token[keep - 1] == '.')) --keep;
      auto path = token.substr(0, keep);
      bool api = path.rfind("/config/", 0) == 0 || path.rfind("/id/", 0) == 0;
      if (!api && std::count(path.begin(), path.end(), '/') >= 2) {
        out += "<path>" + token.substr(keep);
        i = end;
        continue;
      }
    }
    out += text[i++];
  }
  return out;
}

}  // namespace berth
