#include "http/log_stream.hpp"

#include <httplib.h>

#include "http/sse.hpp"

namespace berth::http {

namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr auto wait_slice = 1s;            // how often a quiet stream looks at the server's state
constexpr auto keepalive_interval = 15s;   // a comment so that proxies do not cut idle streams
constexpr size_t event_bytes = 64 * 1024;  // log bytes per `log` event at most
constexpr size_t step_bytes = 1 << 20;     // per provider round, so a long backlog is written in turns

// The bytes in [from, to) were rotated away before they could be sent.
std::string gap_event(uint64_t from, uint64_t to) {
  return sse_event("gap", {{"from", from}, {"to", to}, {"lost", to - from}});
}

}  // namespace

log_stream::log_stream(const context& ctx, std::string path, secret_mask mask, log_request r)
    : ctx_(ctx), path_(std::move(path)), mask_(std::move(mask)), req_(r) {
  if (req_.follow) signal_ = log_watcher::instance().watch(path_);
  next_ = req_.start;
}

bool log_stream::send(httplib::DataSink& sink, const std::string& frame) {
  if (!sink.write(frame.data(), frame.size())) return false;
  last_write_ = clock_type::now();
  return true;
}

bool log_stream::close(httplib::DataSink& sink, const std::string& frame) {
  if (!send(sink, frame)) return false;
  sink.done();
  return true;
}

bool log_stream::send_new(httplib::DataSink& sink, size_t budget, bool& caught_up) {
  caught_up = false;
  auto snap = log_snapshot::take(path_);
  if (next_ < snap.oldest()) {  // rotated away while we were behind: say how much
    if (!send(sink, gap_event(next_, snap.oldest()))) return false;
    next_ = snap.oldest();
  }
  // Caught up once what is left is at most an unfinished line; a full budget leaves the rest
  // to the next round.
  for (size_t sent = 0; sent < budget;) {
    auto chunk = read_lines(snap, next_, event_bytes);
    if (chunk.consumed == 0) {
      caught_up = true;
      break;
    }
    std::string text;
    for (auto& line : mask_secrets(std::move(chunk.lines), mask_)) text += line + "\n";
    uint64_t from = next_;
    next_ += chunk.consumed;
    auto frame = "id: " + std::to_string(next_) + "\n" +
                 sse_event("log", {{"offset", from}, {"next_offset", next_}, {"text", text}});
    if (!send(sink, frame)) return false;
    sent += chunk.consumed;
  }
  return true;
}

bool log_stream::step(httplib::DataSink& sink) {
  if (!started_) {
    started_ = true;
    last_write_ = clock_type::now();
    if (req_.gap_from < req_.start && !send(sink, gap_event(req_.gap_from, req_.start))) return false;
  }
  if (ctx_.is_stopping()) return close(sink, sse_comment("berth is stopping; reconnect with the last id to follow on"));
  if (!backlog_done_) {
    bool caught_up = false;
    if (!send_new(sink, step_bytes, caught_up)) return false;
    if (!caught_up) return true;  // more backlog: the next round
    backlog_done_ = true;
    if (!req_.follow) return close(sink, sse_event("end", {{"next_offset", next_}}));
  }
  if (!sink.is_writable()) return false;
  // Woken by the watcher when the log changed; the slice only lets a quiet stream notice
  // that the server stops or that a keep-alive is due.
  if (signal_->wait(wait_slice)) {
    bool caught_up = false;
    if (!send_new(sink, step_bytes, caught_up)) return false;
    if (!caught_up) signal_->notify();  // more to send: the next round goes on at once
  }
  if (clock_type::now() - last_write_ >= keepalive_interval) return send(sink, sse_comment("keepalive"));
  return true;
}

}  // namespace berth::http
