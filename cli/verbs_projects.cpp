// `berth projects create|ls|show|rm` and `berth check`: the project list and manifests.
#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/client/manifest_file.hpp"
#include "cli/client/verb.hpp"
#include "cli/commands.hpp"

namespace berth {

using namespace berth::cli;

namespace {

void show_project(const json& p) {
  auto runtime = p.value("manifest", json::object()).value("runtime", "process");
  std::cout << fmt::format("{}  ({} runtime)\n", str(p, "name"), runtime);
  if (str(p, "status", "") == "broken") {
    std::cout << fmt::format("  status      broken: {}\n", str(p, "reason"));
    return;
  }
  auto envs = p.value("environments", json::object());
  auto prod = envs.value("production", json::object());
  auto prev = envs.value("preview", json::object());
  std::cout << fmt::format("  production  {:<9} release {}  {}\n", str(prod, "status"), str(prod, "current"),
                           str(prod, "public_url", str(prod, "url")));
  std::cout << fmt::format("  preview     {:<9} {}\n", str(prev, "status"), str(prev, "url"));
  std::cout << fmt::format("  created     {}\n  updated     {}\n", str(p, "created"), str(p, "updated"));
  if (auto domains = p.value("manifest", json::object()).value("domains", json::array()); !domains.empty()) {
    std::string names;
    for (auto& d : domains) names += (names.empty() ? "" : ", ") + d.get<std::string>();
    std::cout << fmt::format("  domains     {}\n", names);
  }
  auto env = p.value("manifest", json::object()).value("env", json::object());
  auto secrets = p.value("manifest", json::object()).value("secrets", json::object());
  std::string keys;
  for (auto& [k, v] : env.items()) keys += (keys.empty() ? "" : ", ") + k;
  std::cout << fmt::format("  env         {}\n", keys.empty() ? "-" : keys);
  keys.clear();
  for (auto& [k, v] : secrets.items()) keys += (keys.empty() ? "" : ", ") + k;
  std::cout << fmt::format("  secrets     {}\n", keys.empty() ? "-" : keys);
}

void add_projects(CLI::App& app) {
  auto* projects = app.add_subcommand("projects", "create, list, show and delete projects");
  projects->require_subcommand(1);

  static std::string file;
  auto* create = projects->add_subcommand("create", "create a project from a manifest file (JSON or .toml)");
  create->add_option("-f,--file", file, "the manifest: berth.json or berth.toml")->required();
  on_run(create, [](http_client& api) {
    auto p = call(api, "POST", "/api/projects", read_manifest_file(file));
    if (api.options().json) print_json_line(p);
    else std::cout << fmt::format("created {}\n", str(p, "name"));
    return exit_ok;
  });

  auto* ls = projects->add_subcommand("ls", "list the projects");
  on_run(ls, [](http_client& api) {
    // The list comes in pages (GET /api/projects?limit&cursor): every page, followed.
    json all = json::array();
    std::string cursor;
    do {
      auto page = call(api, "GET", "/api/projects?limit=1000" + (cursor.empty() ? "" : "&cursor=" + api.escape(cursor)));
      for (auto& p : page["projects"]) all.push_back(std::move(p));
      cursor = page.value("next_cursor", json()).is_string() ? page["next_cursor"].get<std::string>() : "";
    } while (!cursor.empty());
    if (api.options().json) return print_json_line(json{{"projects", all}}), exit_ok;
    if (all.empty()) std::cout << "no projects\n";
    else std::cout << fmt::format("{:<24} {:<10} {:<12} {}\n", "NAME", "RUNTIME", "PRODUCTION", "UPDATED");
    for (auto& p : all)
      std::cout << fmt::format("{:<24} {:<10} {:<12} {}\n", str(p, "name"),
                               p.value("manifest", json::object()).value("runtime", "process"),
                               p.value("ports", json::object()).value("production", 0), str(p, "updated"));
    return exit_ok;
  });

  static std::string name;
  auto* show = projects->add_subcommand("show", "a project: manifest summary and its environments' status");
  show->add_option("NAME", name, "project name")->required();
  on_run(show, [](http_client& api) {
    auto p = call(api, "GET", project_path(api, name));
    if (api.options().json) print_json_line(p);
    else show_project(p);
    return exit_ok;
  });

  auto* rm = projects->add_subcommand("rm", "delete a project and everything it has");
  rm->add_option("NAME", name, "project name")->required();
  on_run(rm, [](http_client& api) {
    auto r = call(api, "DELETE", project_path(api, name));
    if (api.options().json) print_json_line(r);
    else std::cout << fmt::format("deleted {}\n", name);
    return exit_ok;
  });
}

void add_check(CLI::App& app) {
  static std::string name;
  auto* check = app.add_subcommand("check", "is NAME a valid, available project name? (exit 1 when not)");
  check->add_option("NAME", name, "project name")->required();
  on_run(check, [](http_client& api) {
    auto r = call(api, "GET", "/api/check/" + api.escape(name));
    bool ok = r.value("valid", false) && r.value("available", false);
    if (api.options().json) print_json_line(r);
    else if (ok) std::cout << fmt::format("{} is available\n", name);
    else std::cout << fmt::format("{} is not available: {}\n", name, str(r, "reason", "taken"));
    return ok ? exit_ok : exit_failed;
  });
}

}  // namespace

void register_project_verbs(CLI::App& app) {
  add_projects(app);
  add_check(app);
}

}  // namespace berth
