// `berth logs` (an environment's log over GET /api/projects/{name}/logs, followed with -f
// until SIGINT/SIGTERM, resumed from the last offset when the connection drops) and
// `berth state --at` (the project rebuilt from its events up to an instant).
#include <csignal>

#include <atomic>
#include <chrono>
#include <iostream>
#include <optional>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/client/verb.hpp"
#include "cli/commands.hpp"

namespace berth {

using namespace berth::cli;

namespace {

std::atomic<bool> stop_requested{false};

extern "C" void on_stop_signal(int) { stop_requested.store(true); }

// SIGINT/SIGTERM end a followed stream cleanly; no SA_RESTART, so a blocked poll wakes up.
void catch_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
}

struct logs_args {
  std::string name, env = "production", release, tail;
  bool follow = false;
  std::optional<uint64_t> offset;
};

std::string logs_path(http_client& api, const logs_args& a, std::optional<uint64_t> offset) {
  auto path = project_path(api, a.name, "/logs?env=" + api.escape(a.env));
  if (!a.release.empty()) path += "&release=" + api.escape(a.release);
  path += a.follow ? "&follow=1" : "&follow=0";
  if (offset) path += "&offset=" + std::to_string(*offset);
  else if (!a.tail.empty()) path += "&tail=" + api.escape(a.tail);
  return path;
}

int run_logs(http_client& api, const logs_args& a) {
  if (a.follow) catch_stop_signals();
  std::optional<uint64_t> offset = a.offset;
  bool connected = false, ended = false, told_lost = false;
  auto on_event = [&](const sse_message& ev) {
    connected = true;
    auto data = json::parse(ev.data, nullptr, false);
    if (api.options().json) print_json_line({{"event", ev.event}, {"data", data}});
    if (!data.is_object()) return true;
    if (ev.event == "log") {
      if (!api.options().json) std::cout << str(data, "text", "") << std::flush;
      if (data.value("next_offset", json()).is_number_unsigned()) offset = data["next_offset"].get<uint64_t>();
    } else if (ev.event == "gap") {
      if (!api.options().json)
        std::cerr << fmt::format("berth: {} bytes of log were rotated away before this\n", data.value("lost", 0));
      if (data.value("to", json()).is_number_unsigned()) offset = data["to"].get<uint64_t>();
    } else if (ev.event == "end") {
      ended = true;
      return false;
    }
    return true;
  };
  for (int attempt = 0; !ended && !stop_requested.load(); ++attempt) {
    auto r = api.stream(logs_path(api, a, offset), {}, on_event, &stop_requested);
    if (r.status == 200) connected = true;  // even if no line came before it broke
    // A follower that was streaming rides out a busy server (503) as it rides out a restart.
    bool busy = r.how == stream_end::refused && r.status == 503 && a.follow && connected;
    if (r.how == stream_end::refused && !busy) throw failure_of({r.status, r.body, ""}, api.options());
    if (busy) r.error = "the server is busy (503)";
    if (ended || stop_requested.load()) break;
    if (!connected) throw failure_of({0, "", r.error.empty() ? "no answer" : r.error}, api.options());
    if (!a.follow && attempt >= 30) throw failure(exit_unreachable, "lost the log stream: " + r.error);
    if (!told_lost) std::cerr << "berth: log stream lost (" << r.error << "); reconnecting\n";
    told_lost = true;
    for (int i = 0; i < 10 && !stop_requested.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return exit_ok;
}

void add_logs(CLI::App& app) {
  static logs_args args;
  auto* logs = app.add_subcommand("logs", "an environment's log: the last lines, or -f to follow");
  logs->add_option("NAME", args.name, "project name")->required();
  logs->add_flag("-f,--follow", args.follow, "keep following new lines until Ctrl-C");
  logs->add_option("--env", args.env, "production (default) or preview")
      ->check(CLI::IsMember({"production", "preview"}));
  logs->add_option("--release", args.release, "a production release (default: the current one)");
  logs->add_option("--tail", args.tail, "how many last lines to start with (server default 100)");
  logs->add_option("--offset", args.offset, "start at this byte offset instead of the tail");
  on_run(logs, [](http_client& api) { return run_logs(api, args); });
}

void show_state(const json& s) {
  auto prod = s.value("production", json::object());
  auto prev = s.value("preview", json::object());
  auto last = s.value("last_deployment", json());
  std::cout << fmt::format("{} at {}{}\n", str(s, "name"), str(s, "at"),
                           s.value("deleted", json()).is_string() ? " (deleted " + str(s, "deleted") + ")" : "");
  std::cout << fmt::format("  production  {:<9} release {}  ({} kept)\n", str(prod, "status"), str(prod, "current"),
                           prod.value("releases", json::array()).size());
  std::cout << fmt::format("  preview     {}\n", str(prev, "status"));
  if (last.is_object())
    std::cout << fmt::format("  last deploy {} {}\n", str(last, "id"), str(last, "status"));
  auto ev = s.value("last_event", json::object());
  if (ev.contains("seq")) std::cout << fmt::format("  last event  #{} at {}\n", ev["seq"].dump(), str(ev, "time"));
}

void add_state(CLI::App& app) {
  static std::string name, at;
  auto* state = app.add_subcommand("state", "a project's state rebuilt from its events up to an instant");
  state->add_option("NAME", name, "project name")->required();
  state->add_option("--at", at, "ISO-8601 instant, e.g. 2026-12-06T17:00:00Z")->required();
  on_run(state, [](http_client& api) {
    auto s = call(api, "GET", project_path(api, name, "/state?at=" + api.escape(at)));
    if (api.options().json) print_json_line(s);
    else show_state(s);
    return exit_ok;
  });
}

}  // namespace

void register_log_verbs(CLI::App& app) {
  add_logs(app);
  add_state(app);
}

}  // namespace berth
