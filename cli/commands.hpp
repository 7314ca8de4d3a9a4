// Each berth verb registers itself on the CLI11 app. A verb's callback throws
// CLI::RuntimeError(code) to exit with a non-zero code.
#pragma once

namespace CLI {
class App;
}

namespace berth {
void register_serve(CLI::App& app);
void register_audit(CLI::App& app);
void register_log_writer(CLI::App& app);  // hidden: apps' rotated logs
// Client verbs (HTTP to a running server; README "The berth CLI").
void register_project_verbs(CLI::App& app);      // projects create|ls|show|rm, check
void register_setting_verbs(CLI::App& app);      // env, secrets
void register_deploy_verbs(CLI::App& app);       // deploy, rollback, cancel
void register_plan_verbs(CLI::App& app);         // plan
void register_environment_verbs(CLI::App& app);  // preview, production, releases
void register_log_verbs(CLI::App& app);          // logs, state
void register_push_verbs(CLI::App& app);         // push
}  // namespace berth
