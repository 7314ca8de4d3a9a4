// `berth plan NAME [--build]`: what a deploy would change, as `nomad job plan` shows it (+ added,
// - removed, ~ changed); nothing is deployed or written. --json prints the server's answer.
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/client/verb.hpp"
#include "cli/commands.hpp"

namespace berth {

using namespace berth::cli;

namespace {

struct plan_args {
  std::string name;
  bool build = false, force = false;
};

// The server bounds a plan by its build timeout; the client only must not give up first.
constexpr long plan_timeout_s = 300, build_plan_timeout_s = 3600;

const char* mark(const std::string& change) { return change == "added" ? "+" : change == "removed" ? "-" : "~"; }

std::string short_hash(const json& h) { return h.is_string() ? h.get<std::string>().substr(0, 12) : "(unknown)"; }

std::string compact(const json& v) { return v.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string manifest_line(const json& c) {
  auto field = str(c, "field"), change = str(c, "change");
  auto before = c.value("before", json()), after = c.value("after", json());
  std::string what;
  if (field.rfind("secrets.", 0) == 0) what = change == "changed" ? "(value changed)" : "";
  else if (change == "added") what = compact(after);
  else if (change == "removed") what = compact(before);
  else what = compact(before) + " -> " + compact(after);
  return fmt::format("{} {}{}{}\n", mark(change), field, what.empty() ? "" : "  ", what);
}

std::string size_text(const json& n) { return n.is_number() ? fmt::format("{} bytes", n.get<int64_t>()) : ""; }

std::string file_line(const json& f) {
  auto change = str(f, "change");
  auto before = size_text(f.value("size_before", json())), after = size_text(f.value("size_after", json()));
  std::string sizes = change == "added"                   ? after
                      : change == "removed"               ? before
                      : before.empty() && after.empty()   ? std::string()
                                                          : before + " -> " + after;
  return fmt::format("{} {}{}{}\n", mark(change), str(f, "path"), sizes.empty() ? "" : "  ", sizes);
}

// The scratch build: the release it gives and its files, or why it failed.
std::string build_section(const json& b) {
  if (!b.is_object()) return "";
  if (!b.value("ok", false)) {
    auto err = b.value("error", json::object());
    auto out = fmt::format("Scratch build failed ({}): {}\n", str(err, "code"), str(err, "message"));
    for (auto& line : b.value("log", json::array()))
      if (line.is_string()) out += "  | " + line.get<std::string>() + "\n";
    return out;
  }
  auto current = b.value("current", json());
  auto out = fmt::format("Release (scratch build): {}{}\n", str(b, "release_hash"),
                         !current.is_string()        ? " (new)"
                         : b.value("changed", false) ? " (current " + current.get<std::string>() + ")"
                                                     : " (the current release)");
  for (auto& f : b.value("files", json::array())) out += file_line(f);
  return out;
}

void print_plan(const json& p) {
  auto current = p.value("current", json());
  std::vector<std::string> sections;
  if (current.is_string())
    sections.push_back(fmt::format("Plan for {}: current release {}{}\n", str(p, "project"),
                                   current.get<std::string>(),
                                   p.value("deployed_by", json()).is_string() ? " (" + str(p, "deployed_by") + ")" : ""));
  else
    sections.push_back(fmt::format("Plan for {}: no release yet (first deploy)\n", str(p, "project")));
  std::string changes;
  auto source = p.value("source", json::object());
  if (source.value("changed", false))
    changes += fmt::format("{} source.hash  {}\n", current.is_string() ? "~" : "+",
                           current.is_string() ? short_hash(source.value("current", json())) + " -> " +
                                                     short_hash(source.value("hash", json()))
                                               : short_hash(source.value("hash", json())));
  for (auto& c : p.value("manifest", json::object()).value("changes", json::array())) changes += manifest_line(c);
  if (!p.value("changed", true)) changes += "No changes: a deploy would leave production as it is.\n";
  sections.push_back(changes);
  sections.push_back(build_section(p.value("build", json())));
  std::string notes;
  for (auto& n : p.value("notes", json::array()))
    if (n.is_string()) notes += "  - " + n.get<std::string>() + "\n";
  if (!notes.empty()) sections.push_back("Notes:\n" + notes);
  bool first = true;
  for (auto& section : sections) {
    if (section.empty()) continue;
    std::cout << (first ? "" : "\n") << section;
    first = false;
  }
}

}  // namespace

void register_plan_verbs(CLI::App& app) {
  static plan_args args;
  auto* plan = app.add_subcommand("plan", "show what a deploy would change (source, manifest, and with --build the "
                                          "release's files), changing nothing");
  plan->add_option("NAME", args.name, "project name")->required();
  plan->add_flag("--build", args.build, "also build in a scratch workspace and compare the release's files");
  plan->add_flag("--force", args.force, "plan a forced deploy");
  on_run(plan, [](http_client& api) {
    json body{{"dry_run", true}, {"build", args.build}};
    if (args.force) body["force"] = true;
    auto r = api.request("POST", project_path(api, args.name, "/deployments"), body.dump(),
                         args.build ? build_plan_timeout_s : plan_timeout_s);
    if (r.status != 200) throw failure_of(r, api.options());
    auto p = json::parse(r.body, nullptr, false);
    if (!p.is_object()) throw failure(exit_server, "the server's answer is not JSON");
    if (api.options().json) print_json_line(p);
    else print_plan(p);
    return exit_ok;
  });
}

}  // namespace berth
