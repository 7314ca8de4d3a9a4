#include "cli/client/deploy_watch.hpp"

#include <chrono>
#include <iostream>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/client/verb.hpp"

namespace berth::cli {

namespace {

constexpr int max_reconnects = 30;

// The human display: one line per phase; on a terminal the current one is redrawn in place.
class phase_display {
 public:
  explicit phase_display(const watch_options& o) : opts_(o) {}

  void progress(const json& p) {
    auto phase = str(p, "phase", "?");
    auto pct = p.value("progress", json()).is_number() ? p["progress"].get<double>() : 0.0;
    auto canary = canary_of(p);
    auto line = fmt::format("  {:<16} {:>3.0f}%  {}", phase, pct, canary.empty() ? str(p, "message", "") : canary);
    if (phase == "canary" && !canary.empty() && !opts_.terminal) {  // plain output: a line per step and verdict
      auto step = canary_step_of(p);
      if (step != shown_step_) {
        shown_step_ = step;
        shown_phase_ = phase;
        if (phase != phase_ && !phase_.empty()) close_line();
        phase_ = phase;
        std::cout << line << "\n" << std::flush;
        return;
      }
    }
    if (phase != phase_ && !phase_.empty()) close_line();
    phase_ = phase;
    if (opts_.terminal) {
      if (current_.empty()) phase_started_ = clock::now();
      current_ = line;
      redraw();
    } else if (phase != shown_phase_) {  // plain output: one line per phase
      shown_phase_ = phase;
      std::cout << line << "\n" << std::flush;
    }
  }

  // A phase that ended before the stream was opened (a fast `preparing`): shown as done.
  void passed(const std::string& phase) { std::cout << fmt::format("  {:<16} done\n", phase) << std::flush; }

  void log(const std::string& line) {
    if (!opts_.logs) return;
    if (opts_.terminal) std::cout << "\r\033[K";
    std::cout << "    | " << line << "\n";
    if (opts_.terminal && !current_.empty()) std::cout << " " << current_;
    std::cout << std::flush;
  }

  // On a terminal: the spinner turns and the phase's time counts while nothing arrives.
  void tick() {
    if (!opts_.terminal || current_.empty() || clock::now() - last_draw_ < std::chrono::milliseconds(150)) return;
    redraw();
  }

  void close_line() {
    if (opts_.terminal && !current_.empty()) std::cout << "\r\033[K " << current_ << "\n" << std::flush;
    current_.clear();
  }

 private:
  using clock = std::chrono::steady_clock;
  void redraw() {
    static const char* spin = "|/-\\";
    auto secs = std::chrono::duration_cast<std::chrono::seconds>(clock::now() - phase_started_).count();
    std::cout << "\r\033[K" << spin[tick_++ % 4] << current_ << fmt::format(" ({}s)", secs) << std::flush;
    last_draw_ = clock::now();
  }

  // The canary's live state, else its last recorded verdict (null: none).
  static json canary_in(const json& p) {
    auto c = p.value("canary", json());
    if (!c.is_object() && p.value("resources", json()).is_object()) c = p["resources"].value("canary", json());
    return c.is_object() ? c : json();
  }
  // The canary's step and the two sides' figures, live ("" outside the canary phase).
  static std::string canary_of(const json& p) {
    auto c = canary_in(p);
    if (c.is_null() || str(p, "phase", "") != "canary") return "";
    auto side = [](const json& f) {
      if (!f.is_object()) return std::string("-");
      auto p99 = f.value("p99_ms", int64_t{-1});
      return fmt::format("{} req, {} err ({:.1f} %), p99 {}", f.value("requests", 0), f.value("errors", 0),
                         100.0 * f.value("error_rate", 0.0), p99 < 0 ? std::string("-") : std::to_string(p99) + " ms");
    };
    return fmt::format("step {}/{} at {} % ({}): candidate {} | serving {}", c.value("step", 0), c.value("steps", 0),
                       c.value("percent", 0), str(c, "verdict", ""), side(c.value("candidate", json())),
                       side(c.value("serving", json())));
  }
  static std::string canary_step_of(const json& p) {
    auto c = canary_in(p);
    return c.is_null() ? "" : fmt::format("{}/{}", c.value("step", 0), str(c, "verdict", ""));
  }

  watch_options opts_;
  std::string phase_, shown_phase_, current_, shown_step_;
  unsigned tick_ = 0;
  clock::time_point phase_started_ = clock::now(), last_draw_;
};

// The phases deployment `id` went through before `current` (queued left out), from its detail;
// none when it cannot be read (the stream's own events still tell the rest).
std::vector<std::string> phases_before(const http_client& stream, const std::string& id, const std::string& current) {
  std::vector<std::string> out;
  http_client api(stream.options());  // `stream`'s handle is busy with the event stream
  auto r = api.request("GET", "/api/deployments/" + api.escape(id));
  auto detail = json::parse(r.body, nullptr, false);
  if (r.status != 200 || !detail.is_object() || !detail.value("phases", json()).is_array()) return out;
  for (auto& span : detail["phases"]) {
    auto phase = str(span, "phase", "");
    if (phase == current) break;
    if (!phase.empty() && phase != "queued") out.push_back(phase);
  }
  return out;
}

}  // namespace

int watch_deployment(http_client& api, const std::string& id, const std::string& what, const watch_options& opts) {
  phase_display display(opts);
  json end;
  std::string end_name;
  bool caught_up = opts.json;  // the phases passed before the first event are shown once
  auto on_event = [&](const sse_message& ev) {
    auto data = json::parse(ev.data, nullptr, false);
    if (opts.json) print_json_line({{"event", ev.event}, {"data", data}});
    if (ev.event == "progress" && data.is_object() && !caught_up) {
      caught_up = true;
      for (auto& phase : phases_before(api, id, str(data, "phase", ""))) display.passed(phase);
    }
    if (ev.event == "progress" && data.is_object() && !opts.json) display.progress(data);
    if (ev.event == "log" && data.is_object() && !opts.json) display.log(str(data, "line", ""));
    if (ev.event == "complete" || ev.event == "error") {
      end = data;
      end_name = ev.event;
      return false;  // the last event: stop reading
    }
    return true;
  };
  auto path = "/api/deployments/" + api.escape(id) + "/events";
  for (int attempt = 0; end_name.empty(); ++attempt) {
    auto r = api.stream(path, {}, on_event, nullptr, [&] { display.tick(); });
    if (!end_name.empty()) break;
    if (r.how == stream_end::refused) throw failure_of({r.status, r.body, ""}, api.options());
    if (r.how == stream_end::dropped && r.status == 0 && attempt == 0)
      throw failure_of({0, "", r.error}, api.options());
    if (attempt >= max_reconnects)
      throw failure(exit_unreachable, fmt::format("lost the stream of deployment {}: {}", id, r.error));
    std::this_thread::sleep_for(std::chrono::seconds(1));  // the server may be restarting
  }
  if (!opts.json) display.close_line();
  if (end_name == "complete") {
    if (!opts.json) {
      auto status = str(end, "status", "completed");
      auto duration = end.value("duration_s", json()).is_number() ? end["duration_s"].get<double>() : 0.0;
      std::cout << fmt::format("{} {}: release {} ({:.1f} s)", what, status, str(end, "hash"), duration);
      if (end.value("url", json()).is_string()) std::cout << " at " << end["url"].get<std::string>();
      std::cout << "\n" << std::flush;
    }
    return exit_ok;
  }
  std::cout.flush();
  std::cerr << fmt::format("berth: {} {} failed in phase {}: {} ({})\n", what, id, str(end, "phase", "?"),
                           str(end, "message", "no message"), str(end, "code", "failed"));
  return exit_failed;
}

int follow_job(http_client& api, const json& detail, const std::string& what, bool logs) {
  auto id = str(detail, "id", "");
  if (id.empty()) throw failure(exit_server, "the server did not say which deployment it started");
  if (api.options().json) print_json_line(detail);
  else std::cout << fmt::format("{} {}: deployment {}\n", what, str(detail, "project", ""), id) << std::flush;
  return watch_deployment(api, id, what, {logs, api.options().json, stdout_is_terminal()});
}

int deploy_and_follow(http_client& api, const std::string& name, bool force, bool logs) {
  auto body = force ? json{{"force", true}} : json(nullptr);
  return follow_job(api, call(api, "POST", project_path(api, name, "/deployments"), body), "deploy", logs);
}

}  // namespace berth::cli
