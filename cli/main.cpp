#include <CLI/CLI.hpp>

#include "cli/commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"berth — a self-hosted deployment orchestrator", "berth"};
  app.set_version_flag("--version", BERTH_VERSION);
  app.require_subcommand(1);
  berth::register_serve(app);
  berth::register_audit(app);
  berth::register_log_writer(app);
  berth::register_project_verbs(app);
  berth::register_setting_verbs(app);
  berth::register_deploy_verbs(app);
  berth::register_plan_verbs(app);
  berth::register_environment_verbs(app);
  berth::register_log_verbs(app);
  berth::register_push_verbs(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::RuntimeError& e) {  // a verb's own exit code; it said why
    return e.get_exit_code();
  } catch (const CLI::ParseError& e) {  // help and version exit 0; bad usage exits 2
    return app.exit(e) == 0 ? 0 : 2;
  }
  return 0;
}
