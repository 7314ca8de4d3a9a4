// `berth preview start|stop|restart`, `berth production stop|start` and `berth releases`.
#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/client/verb.hpp"
#include "cli/commands.hpp"

namespace berth {

using namespace berth::cli;

namespace {

std::string name;

void print_status(http_client& api, const std::string& env, const json& s) {
  if (api.options().json) return print_json_line(s);
  std::cout << fmt::format("{} {}: {}", name, env, str(s, "status"));
  if (s.value("url", json()).is_string() && str(s, "status", "") == "running") std::cout << " at " << str(s, "url");
  if (s.contains("reason")) std::cout << " (" << str(s, "reason") << ")";
  std::cout << "\n";
}

void add_env_actions(CLI::App& app, const char* env, std::initializer_list<const char*> actions) {
  auto* group = app.add_subcommand(env, fmt::format("{} an environment of a project", fmt::join(actions, "|")));
  group->require_subcommand(1);
  for (auto* action : actions) {
    auto* verb = group->add_subcommand(action, fmt::format("{} the {}", action, env));
    verb->add_option("NAME", name, "project name")->required();
    std::string path = fmt::format("/{}/{}", env, action), which = env;
    on_run(verb, [path, which](http_client& api) {
      print_status(api, which, call(api, "POST", project_path(api, name, path)));
      return exit_ok;
    });
  }
}

void add_releases(CLI::App& app) {
  auto* releases = app.add_subcommand("releases", "a project's kept production releases, newest first");
  releases->add_option("NAME", name, "project name")->required();
  on_run(releases, [](http_client& api) {
    auto h = call(api, "GET", project_path(api, name, "/production/history"));
    if (api.options().json) return print_json_line(h), exit_ok;
    auto list = h.value("releases", json::array());
    if (list.empty()) std::cout << "no releases\n";
    else std::cout << fmt::format("  {:<12}  {:<24}  {}\n", "RELEASE", "CREATED", "DEPLOYED");
    for (auto& r : list)
      std::cout << fmt::format("{} {:<12}  {:<24}  {}\n", r.value("current", false) ? "*" : " ", str(r, "hash"),
                               str(r, "created"), str(r, "deployed_at"));
    return exit_ok;
  });
}

}  // namespace

void register_environment_verbs(CLI::App& app) {
  add_env_actions(app, "preview", {"start", "stop", "restart"});
  add_env_actions(app, "production", {"stop", "start"});
  add_releases(app);
}

}  // namespace berth
