// `berth env set|unset` and `berth secrets set|unset`: edit the manifest's env or secrets
// with GET → change → PUT. Secrets show as "********" in the GET, and a PUT that sends that
// back keeps the stored value (README "Secrets"), so the other secrets are never touched.
#include <termios.h>
#include <unistd.h>

#include <iostream>
#include <iterator>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/client/verb.hpp"
#include "cli/commands.hpp"

namespace berth {

using namespace berth::cli;

namespace {

struct edit_args {
  std::string name;
  std::vector<std::string> keys;
};

// GET the manifest, let `change` edit manifest[field], PUT it back.
json edit_manifest(http_client& api, const std::string& name, const char* field,
                   const std::function<void(json&)>& change) {
  auto project = call(api, "GET", project_path(api, name));
  if (!project.contains("manifest"))
    throw failure(exit_failed, fmt::format("{} has no readable manifest ({})", name, str(project, "status")));
  auto manifest = project["manifest"];
  if (!manifest[field].is_object()) manifest[field] = json::object();
  change(manifest[field]);
  return call(api, "PUT", project_path(api, name), manifest);
}

// The secret's value from stdin: typed without echo on a terminal, else all of stdin (one
// trailing newline dropped).
std::string read_secret(const std::string& key) {
  std::string value;
  if (::isatty(STDIN_FILENO)) {
    termios saved{};
    bool hidden = ::tcgetattr(STDIN_FILENO, &saved) == 0;
    if (hidden) {
      auto quiet = saved;
      quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
      ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    std::cerr << "value for " << key << ": " << std::flush;
    std::getline(std::cin, value);
    if (hidden) ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
    std::cerr << "\n";
  } else {
    value.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    if (!value.empty() && value.back() == '\n') value.pop_back();
    if (!value.empty() && value.back() == '\r') value.pop_back();
  }
  if (value.empty()) throw failure(exit_usage, fmt::format("no value for {} on stdin", key));
  return value;
}

void report(http_client& api, const json& project, const std::string& line) {
  if (api.options().json) print_json_line(project);
  else std::cout << line << "\n";
}

void add_env(CLI::App& app) {
  static edit_args args;
  auto* env = app.add_subcommand("env", "set or unset variables of a project's manifest env");
  env->require_subcommand(1);
  auto* set = env->add_subcommand("set", "set KEY=VALUE pairs");
  set->add_option("NAME", args.name, "project name")->required();
  set->add_option("PAIRS", args.keys, "KEY=VALUE ...")->required();
  on_run(set, [](http_client& api) {
    for (auto& kv : args.keys)
      if (kv.find('=') == std::string::npos || kv[0] == '=')
        throw failure(exit_usage, fmt::format("'{}' is not KEY=VALUE", kv));
    auto p = edit_manifest(api, args.name, "env", [](json& env) {
      for (auto& kv : args.keys) env[kv.substr(0, kv.find('='))] = kv.substr(kv.find('=') + 1);
    });
    std::string keys;
    for (auto& kv : args.keys) keys += " " + kv.substr(0, kv.find('='));
    report(api, p, fmt::format("env of {}: set{}", args.name, keys));
    return exit_ok;
  });
  auto* unset = env->add_subcommand("unset", "remove KEYs");
  unset->add_option("NAME", args.name, "project name")->required();
  unset->add_option("KEYS", args.keys, "KEY ...")->required();
  on_run(unset, [](http_client& api) {
    auto p = edit_manifest(api, args.name, "env", [](json& env) {
      for (auto& k : args.keys) env.erase(k);
    });
    report(api, p, fmt::format("env of {}: unset {}", args.name, fmt::join(args.keys, " ")));
    return exit_ok;
  });
}

void add_secrets(CLI::App& app) {
  static edit_args args;
  static std::string key;
  auto* secrets = app.add_subcommand("secrets", "set (value from stdin) or unset a project's secrets");
  secrets->require_subcommand(1);
  auto* set = secrets->add_subcommand("set", "set KEY to the value read from stdin (never echoed)");
  set->add_option("NAME", args.name, "project name")->required();
  set->add_option("KEY", key, "secret name")->required();
  on_run(set, [](http_client& api) {
    auto value = read_secret(key);
    auto p = edit_manifest(api, args.name, "secrets", [&](json& s) { s[key] = value; });
    report(api, p, fmt::format("secret {} of {} set", key, args.name));
    return exit_ok;
  });
  auto* unset = secrets->add_subcommand("unset", "remove a secret");
  unset->add_option("NAME", args.name, "project name")->required();
  unset->add_option("KEY", key, "secret name")->required();
  on_run(unset, [](http_client& api) {
    auto p = edit_manifest(api, args.name, "secrets", [](json& s) { s.erase(key); });
    report(api, p, fmt::format("secret {} of {} unset", key, args.name));
    return exit_ok;
  });
}

}  // namespace

void register_setting_verbs(CLI::App& app) {
  add_env(app);
  add_secrets(app);
}

}  // namespace berth
