// `berth deploy`, `berth rollback` (both followed live to their end), `berth cancel`, and a
// canary's `berth promote` / `berth abort`.
#include <iostream>
#include <tuple>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/client/deploy_watch.hpp"
#include "cli/client/verb.hpp"
#include "cli/commands.hpp"

namespace berth {

using namespace berth::cli;

namespace {

struct deploy_args {
  std::string name, hash;
  bool force = false, logs = false;
};

}  // namespace

void register_deploy_verbs(CLI::App& app) {
  static deploy_args args;
  auto* deploy = app.add_subcommand("deploy", "build and switch to a new production release, shown phase by phase");
  deploy->add_option("NAME", args.name, "project name")->required();
  deploy->add_flag("--force", args.force, "deploy even when the release is the current one");
  deploy->add_flag("--logs", args.logs, "show the build log");
  on_run(deploy, [](http_client& api) {
    return deploy_and_follow(api, args.name, args.force, args.logs);
  });

  auto* rollback = app.add_subcommand("rollback", "switch production back to the previous release, or to HASH");
  rollback->add_option("NAME", args.name, "project name")->required();
  rollback->add_option("HASH", args.hash, "a kept release (see `berth releases NAME`)");
  rollback->add_flag("--logs", args.logs, "show the job's log");
  on_run(rollback, [](http_client& api) {
    auto body = args.hash.empty() ? json(nullptr) : json{{"hash", args.hash}};
    return follow_job(api, call(api, "POST", project_path(api, args.name, "/production/rollback"), body), "rollback",
                  args.logs);
  });

  static std::string id;
  auto* cancel = app.add_subcommand("cancel", "cancel a queued or running deployment");
  cancel->add_option("DEPLOYMENT", id, "deployment id (<name>.<seq>)")->required();
  on_run(cancel, [](http_client& api) {
    auto d = call(api, "POST", "/api/deployments/" + api.escape(id) + "/cancel");
    if (api.options().json) print_json_line(d);
    else std::cout << fmt::format("{}: {} (phase {})\n", id, str(d, "status"), str(d, "phase"));
    return exit_ok;
  });

  // The canary's verdict by a person; the deploy's own follower shows what happens next.
  for (auto [verb, help, said] :
       {std::tuple{"promote", "send all traffic to a deployment's canary now (skip its remaining steps)", "promoted"},
        std::tuple{"abort", "revert a deployment's canary now: every request back to the serving release", "aborted"}}) {
    auto* cmd = app.add_subcommand(verb, help);
    cmd->add_option("DEPLOYMENT", id, "deployment id (<name>.<seq>)")->required();
    on_run(cmd, [verb = std::string(verb), said = std::string(said)](http_client& api) {
      auto d = call(api, "POST", "/api/deployments/" + api.escape(id) + "/" + verb);
      if (api.options().json) print_json_line(d);
      else std::cout << fmt::format("{}: canary {} (phase {})\n", id, said, str(d, "phase"));
      return exit_ok;
    });
  }
}

}  // namespace berth
