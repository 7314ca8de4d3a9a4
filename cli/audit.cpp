// `berth audit`: reads the event log offline (a RocksDB secondary instance, so it also works
// next to a running server) and never writes to it.
//   berth audit verify --data DIR [--public-key FILE | --audit-key FILE] [--head JSON|FILE] [--json]
//   berth audit head|key (cli/audit_anchor.cpp)
//   berth audit replay --data DIR [--project NAME] [--until ISO-8601] [--json]
#include <cstdint>
#include <iostream>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/audit_anchor.hpp"
#include "cli/commands.hpp"
#include "messages/event.hpp"
#include "http/render.hpp"
#include "messages/project_state.hpp"
#include "messages/replay.hpp"
#include "runtime/eventlog/event_log.hpp"

namespace berth {

namespace {

using json = nlohmann::json;

// Exit codes of `berth audit`.
constexpr int exit_broken = 1;  // verify: the chain is broken
constexpr int exit_usage = 2;   // no log, unreadable log, bad arguments

struct audit_options {
  std::string data_dir;
  bool json_output = false;
  std::string project;
  std::string until;
  anchor_options anchors;
};

std::unique_ptr<event_log> open_log(const std::string& data_dir) {
  std::unique_ptr<event_log> log;
  auto dir = data_dir + "/events";
  if (auto s = event_log::open(dir, event_log::mode::read_only, &log); !s) {
    std::cerr << fmt::format("berth audit: cannot open the event log at {}: {}\n", dir,
                             s.message());
    throw CLI::RuntimeError(exit_usage);
  }
  return log;
}

// Secret values never leave `audit replay`, even from a log written by a berth that stored
// them (they belong in the project's 0600 .secrets file only): every string under a "secrets"
// object in an event's data is printed as ********, and a credential in a source's git URL as
// https://***@host/…. Returns true when something was masked.
bool mask_secrets(json& j) {
  bool masked = false;
  if (j.is_object()) {
    for (auto& [key, value] : j.items()) {
      if (key == "secrets" && value.is_object()) {
        for (auto& [name, v] : value.items())
          if (!(v.is_string() && v.get<std::string>() == "********")) {
            v = "********";
            masked = true;
          }
      } else if (key == "source" && value.is_object() && value.contains("git") && value["git"].is_string() &&
                 git_url_has_credentials(value["git"].get<std::string>())) {
        value["git"] = git_url_for_display(value["git"].get<std::string>());
        masked = true;
      } else {
        masked = mask_secrets(value) || masked;
      }
    }
  } else if (j.is_array()) {
    for (auto& v : j) masked = mask_secrets(v) || masked;
  }
  return masked;
}

// The event as printed: its data with secret values masked. When something had to be masked
// the printed data no longer matches the event's hash; `redacted` says so in --json output.
event_record printable(const event_record& e, bool* redacted) {
  *redacted = false;
  if (e.data.find("secrets") == std::string::npos && e.data.find("\"git\"") == std::string::npos) return e;
  auto data = json::parse(e.data, nullptr, false);
  if (data.is_discarded() || !mask_secrets(data)) return e;
  event_record out = e;
  out.data = dump_json(data);
  *redacted = true;
  return out;
}

// The hash chain first (a broken link needs no key to be seen), then the signed checkpoints and
// the anchored head (cli/audit_anchor.cpp), which catch a chain recomputed after a rewrite.
void run_verify(const audit_options& o) {
  auto log = open_log(o.data_dir);
  auto r = log->verify();
  json anchors;
  bool anchored_ok = true;
  if (r.ok && !o.json_output) std::cout << fmt::format("ok: {} events verified, chain intact\n", r.checked);
  if (r.ok) anchored_ok = verify_log_anchors(*log, o.anchors, o.json_output, &anchors);
  if (o.json_output) {
    json out{{"ok", r.ok && anchored_ok}, {"checked", r.checked}, {"first_bad", r.first_bad},
             {"reason", r.ok ? anchors.value("reason", "") : r.reason}, {"chain_ok", r.ok}, {"anchors", anchors}};
    std::cout << dump_json(out, 2) << std::endl;
  } else if (!r.ok) {
    std::cout << fmt::format("broken: first bad event seq {}: {}\n", r.first_bad, r.reason);
    std::cout << fmt::format("({} events before it verified)\n", r.checked);
  }
  std::cout.flush();
  if (!r.ok || !anchored_ok) throw CLI::RuntimeError(exit_broken);
}

json ports_json(const port_table& table, const std::string& only_project) {
  json out = json::object();
  for (auto& [port, lease] : table) {
    if (!only_project.empty() && lease.project != only_project) continue;
    out[std::to_string(port)] = {{"project", lease.project}, {"kind", to_string(lease.kind)}};
  }
  return out;
}

void run_replay(const audit_options& o) {
  int64_t until_us = std::numeric_limits<int64_t>::max();
  if (!o.until.empty() && !parse_iso8601(o.until, until_us)) {
    std::cerr << fmt::format(
        "berth audit: invalid --until '{}': expected ISO-8601 such as 2026-11-23T10:00:00Z\n",
        o.until);
    throw CLI::RuntimeError(exit_usage);
  }
  if (!o.project.empty() && !valid_stream_name(project_stream(o.project))) {
    std::cerr << fmt::format("berth audit: invalid --project '{}'\n", o.project);
    throw CLI::RuntimeError(exit_usage);
  }
  auto log = open_log(o.data_dir);

  log_replay replay;  // the same folds as GET /api/projects/{name}/state (messages/replay.hpp)
  replay.until_us = until_us;
  json events = json::array();
  const std::string wanted = o.project.empty() ? std::string() : project_stream(o.project);

  // Returns false at the first event after --until (the log's times never go backwards).
  auto on_event = [&](const event_record& e) {
    if (!replay.fold(e)) return false;
    // Events printed: all of them, or only the chosen project's stream.
    if (!wanted.empty() && e.stream != wanted) return true;
    bool redacted = false;
    auto shown = printable(e, &redacted);
    if (o.json_output) {
      auto j = to_json(shown);
      if (redacted) j["redacted"] = true;
      events.push_back(std::move(j));
    } else {
      std::cout << fmt::format("{}  {}  {}  {}  {}{}\n", shown.seq, iso8601(shown.ts_us), shown.stream,
                               shown.type, shown.data, redacted ? "  (secret values masked)" : "");
    }
    return true;
  };

  status s;
  if (wanted.empty()) {
    s = log->scan(1, on_event);
  } else {
    // Only this project's stream plus the port leases are needed, in log order.
    std::vector<event_record> mine, leases;
    auto read_all = [&](const std::string& stream, std::vector<event_record>* out) {
      auto st = log->read_stream(stream, 1, std::numeric_limits<uint64_t>::max(), out);
      if (st.which() == status::code::not_found) st = status::ok();  // an empty stream
      return st;
    };
    s = read_all(wanted, &mine);
    if (s) s = read_all(ports_stream, &leases);
    if (s)
      for (auto& e : merge_by_seq(mine, leases))
        if (!on_event(e)) break;
  }
  if (!s) {
    std::cerr << fmt::format("berth audit: reading the event log failed: {}\n", s.message());
    throw CLI::RuntimeError(exit_usage);
  }

  json state_projects = json::object();
  for (auto& [name, st] : replay.projects) {
    if (!st.exists) continue;
    if (!o.project.empty() && name != o.project) continue;
    state_projects[name] = to_json(st);
  }
  json state{{"projects", std::move(state_projects)}, {"ports", ports_json(replay.ports, o.project)}};

  if (o.json_output) {
    std::cout << dump_json(json{{"events", std::move(events)}, {"state", std::move(state)}}, 2)
              << std::endl;
  } else {
    std::cout << "state:\n" << dump_json(state, 2) << std::endl;
  }
}

}  // namespace

void register_audit(CLI::App& app) {
  auto* audit = app.add_subcommand("audit", "verify, replay or sign the event log's head offline (read-only)");
  audit->require_subcommand(1);

  auto vo = std::make_shared<audit_options>();
  auto* verify = audit->add_subcommand(
      "verify", "walk the hash chain of the whole log and check its signed checkpoints (and an anchored head)");
  verify->add_option("--data", vo->data_dir, "data directory of the server")
      ->required()
      ->envname("BERTH_DATA");
  verify->add_flag("--json", vo->json_output, "print {ok, checked, first_bad, reason, chain_ok, anchors}");
  add_anchor_options(verify, vo->anchors);
  verify->callback([vo] { run_verify(*vo); });

  auto ro = std::make_shared<audit_options>();
  auto* replay = audit->add_subcommand(
      "replay", "print the events and the state folded from them (projects, port leases)");
  replay->add_option("--data", ro->data_dir, "data directory of the server")
      ->required()
      ->envname("BERTH_DATA");
  replay->add_option("--project", ro->project, "only the stream project/NAME and its ports");
  replay->add_option("--until", ro->until, "only events with time <= this ISO-8601 instant");
  replay->add_flag("--json", ro->json_output,
                   "one JSON document {events, state: {projects, ports}}");
  replay->callback([ro] { run_replay(*ro); });

  register_audit_anchor(audit);
}

}  // namespace berth
