// `berth log-writer --max-bytes N --files K PATH` (hidden): what berth-log-writer does
// (runtime/logs/log_writer.hpp), for a berth whose small binary is missing beside it.
#include <memory>

#include <CLI/CLI.hpp>

#include "cli/commands.hpp"
#include "runtime/logs/log_writer.hpp"

namespace berth {

void register_log_writer(CLI::App& app) {
  auto* cmd = app.add_subcommand("log-writer", "copies stdin into a file rotated by size");
  cmd->group("");  // hidden from --help: only the process driver starts it
  auto rotation = std::make_shared<log_rotation>();
  auto path = std::make_shared<std::string>();
  cmd->add_option("--max-bytes", rotation->max_bytes)->required();
  cmd->add_option("--files", rotation->files)->required()->check(CLI::Range(1, 1000));
  cmd->add_option("path", *path)->required();
  cmd->callback([rotation, path] { copy_into_rotating_file(0, *path, *rotation); });
}

}  // namespace berth
