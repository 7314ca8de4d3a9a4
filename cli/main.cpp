#include <CLI/CLI.hpp>

#include "cli/commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"berth — a self-hosted deployment orchestrator", "berth"};
  app.set_version_flag("--version", BERTH_VERSION);
  app.require_subcommand(1);
  berth::register_serve(app);
  berth::register_audit(app);
  berth::register_log_writer(app);
  CLI11_PARSE(app, argc, argv);
  return 0;
}
