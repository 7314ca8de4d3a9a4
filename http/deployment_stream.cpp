#include "http/deployment_stream.hpp"

#include <httplib.h>

#include "http/render.hpp"
#include "http/reply.hpp"
#include "http/route_util.hpp"
#include "http/sse.hpp"
#include "messages/atoms.hpp"
#include "messages/errors.hpp"

namespace berth::http {

namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr auto receive_slice = 1s;       // how often a silent stream looks at its connection
constexpr auto keepalive_interval = 15s;  // a comment so that proxies do not cut idle streams
constexpr auto check_after = 15s;         // silence after which the deployment's state is asked
constexpr auto stream_limit = 2h;
constexpr int check_failures = 3;

bool terminal(const json& detail) {
  auto it = detail.find("status");
  return it != detail.end() && it->is_string() && is_terminal_status(it->get<std::string>());
}

}  // namespace

deployment_stream::deployment_stream(const context& ctx, std::string id) : ctx_(ctx), id_(std::move(id)) {}

caf::error deployment_stream::open() {
  auto to = projects(ctx_);
  if (!to) return make_error(errc::unavailable, "berth is starting or restarting; retry");
  self_ = std::make_unique<caf::scoped_actor>(ctx_.sys);
  caf::error failure;
  (*self_)
      ->request(to, caf::duration{ctx_.timeout()}, subscribe_atom_v, id_)
      .receive(
          [&](deployment_view& v) {
            first_ = to_json(v, false);
            first_lines_ = v.log;
          },
          [&](caf::error& err) { failure = std::move(err); });
  return failure;
}

bool deployment_stream::send(httplib::DataSink& sink, const std::string& frame) {
  if (!sink.write(frame.data(), frame.size())) return false;
  last_write_ = clock_type::now();
  return true;
}

// A progress event when the state changed, preceded by one for each phase passed through since
// the last state sent (pushes of one committed batch may carry several). The first state (for a
// client that may connect late) does not replay the past phases.
bool deployment_stream::send_progress(httplib::DataSink& sink, const json& detail) {
  auto resources = last_progress_.is_object() ? last_progress_["resources"] : json::object();
  auto steps = passed_phases(detail, phases_seen_, resources);
  if (last_progress_.is_null()) steps.clear();
  steps.push_back(progress_data(detail));
  for (auto& p : steps) {
    if (p == last_progress_) continue;
    last_progress_ = p;
    if (!send(sink, sse_event("progress", p))) return false;
  }
  return true;
}

bool deployment_stream::send_lines(httplib::DataSink& sink, const std::vector<std::string>& lines) {
  for (auto& line : lines)
    if (!send(sink, sse_event("log", {{"line", line}}))) return false;
  return true;
}

bool deployment_stream::finish(httplib::DataSink& sink, const json& detail) {
  std::string name;
  auto data = end_data(detail, name);
  if (!send(sink, sse_event(name, data))) return false;
  sink.done();
  return true;
}

json deployment_stream::check() {
  auto r = ask<deployment_view>(ctx_.sys, projects(ctx_), ctx_.timeout(), deployment_atom_v, id_);
  return r ? to_json(*r, false) : json(json::value_t::discarded);
}

bool deployment_stream::step(httplib::DataSink& sink) {
  if (!started_) {
    started_ = true;
    opened_ = last_write_ = last_heard_ = clock_type::now();
    // The current state first, then its log so far.
    if (!send_progress(sink, first_) || !send_lines(sink, first_lines_)) return false;
    if (terminal(first_)) return finish(sink, first_);
    return true;
  }
  if (clock_type::now() - opened_ > stream_limit || ctx_.is_stopping()) {
    auto why = ctx_.is_stopping() ? "berth is stopping" : "stream time limit reached";
    if (!send(sink, sse_comment(std::string(why) + "; reconnect to follow on"))) return false;
    sink.done();
    return true;
  }
  if (!sink.is_writable()) return false;
  bool ok = true, ended = false;
  (*self_)->receive(
      [&](deployment_view& v) {
        last_heard_ = clock_type::now();
        auto detail = to_json(v, false);
        ok = send_progress(sink, detail);
        if (ok && terminal(detail)) ended = true, ok = finish(sink, detail);
      },
      [&](log_lines_atom, const std::string&, std::vector<std::string>& lines) {
        last_heard_ = clock_type::now();
        ok = send_lines(sink, lines);
      },
      caf::after(receive_slice) >> [&] {});
  if (!ok || ended) return ok;
  if (clock_type::now() - last_heard_ > check_after) {
    last_heard_ = clock_type::now();
    auto detail = check();
    if (detail.is_discarded() && ++failures_ >= check_failures) {
      if (!send(sink, sse_event("error", {{"phase", nullptr}, {"message", "the deployment cannot be followed any more"},
                                          {"code", "unavailable"}})))
        return false;
      sink.done();
      return true;
    }
    if (!detail.is_discarded()) {
      failures_ = 0;
      if (terminal(detail)) return send_progress(sink, detail) && finish(sink, detail);
    }
  }
  if (clock_type::now() - last_write_ >= keepalive_interval) return send(sink, sse_comment("keepalive"));
  return true;
}

}  // namespace berth::http
