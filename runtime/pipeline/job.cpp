#include "runtime/pipeline/job.hpp"

#include <fmt/format.h>

#include "messages/project_state.hpp"

namespace berth::pipeline {

using json = nlohmann::json;

void undo_stack::unwind(deploy_log& log) {
  while (!items_.empty()) {
    auto [what, undo] = std::move(items_.back());
    items_.pop_back();
    try {
      undo();
    } catch (const failure& f) {
      log.line("error: undoing '" + what + "': " + f.message);
    } catch (const std::exception& e) {
      log.line("error: undoing '" + what + "': " + e.what());
    }
  }
}

bool job::give_up() const {
  auto why = host.stop_requested();
  return why == stop_request::cancel || why == stop_request::shutdown_now || why == stop_request::abandoned ||
         clock_type::now() > deadline;
}

void job::fail(const std::string& code, const std::string& message) const {
  log().line("error: " + message);
  throw failure{code, message};
}

void job::gave_up() const {
  switch (host.stop_requested()) {
    case stop_request::cancel: throw failure{"cancelled", "cancelled by request"};
    case stop_request::shutdown:
    case stop_request::shutdown_now: throw failure{"interrupted", "berth is stopping"};
    case stop_request::abandoned: throw failure{"interrupted", "production stopped"};
    case stop_request::none: break;
  }
  throw failure{"timeout", std::string(to_string(current)) + " ran out of time"};
}

void job::add_event(const std::string& type, const json& data) {
  pending.push_back({project_stream(in.project), type, data.dump(-1, ' ', false, json::error_handler_t::replace)});
}

void job::record(std::vector<new_event> events, bool durable) {
  auto batch = std::move(pending);
  pending.clear();
  for (auto& e : events) batch.push_back(std::move(e));
  if (batch.empty() && !durable) return;
  if (auto s = host.record(std::move(batch), durable); !s)
    throw failure{"internal", "the event log refused the deployment's events: " + s.message()};
}

new_event job::phase_event(phase p, const std::string& message, const deployment_error* error) const {
  auto all = resources;
  all.update(once);
  once = nlohmann::json::object();
  return {project_stream(in.project), event_type(p), phase_event_data(in.id, message, all, error)};
}

exit_watch::exit_watch(runtime_driver& driver, const instance_ref& r) : driver_(driver) {
  auto st = st_;
  token_ = driver_.watch(r, [st](const instance_status& end) {
    std::lock_guard<std::mutex> lock(st->mu);
    st->end = end;
    st->cv.notify_all();
  });
}

exit_watch::~exit_watch() { driver_.unwatch(token_); }

std::optional<instance_status> exit_watch::wait_for(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(st_->mu);
  st_->cv.wait_for(lock, timeout, [&] { return st_->end.has_value(); });
  return st_->end;
}

int64_t ms_since(clock_type::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - t0).count();
}

int64_t us_since(clock_type::time_point t0) {
  return std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - t0).count();
}

void record_duration(job& j, const std::string& name, clock_type::time_point t0) {
  auto us = us_since(t0);
  j.resources[name + "_ms"] = us / 1000;
  j.resources[name + "_us"] = us;
}

}  // namespace berth::pipeline
