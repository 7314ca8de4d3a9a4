// `berth log-writer --max-bytes N --files K PATH` (hidden): copies its stdin (an app's stdout
// and stderr) into PATH, rotating by size (runtime/logs/rotating_file.hpp). Started by the
// process driver inside the app's session and process group, so it outlives berth with the app,
// and a stop of the group stops it. It ignores SIGTERM/SIGINT/SIGHUP so that the app's last
// lines are still written, and exits at end of input: once every writer of the pipe is gone.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include <CLI/CLI.hpp>

#include "cli/commands.hpp"
#include "runtime/logs/rotating_file.hpp"

namespace berth {

void register_log_writer(CLI::App& app) {
  auto* cmd = app.add_subcommand("log-writer", "copies stdin into a file rotated by size");
  cmd->group("");  // hidden from --help: only the process driver starts it
  auto rotation = std::make_shared<log_rotation>();
  auto path = std::make_shared<std::string>();
  cmd->add_option("--max-bytes", rotation->max_bytes)->required();
  cmd->add_option("--files", rotation->files)->required()->check(CLI::Range(1, 1000));
  cmd->add_option("path", *path)->required();
  cmd->callback([rotation, path] {
    for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGPIPE}) ::signal(sig, SIG_IGN);
    rotating_file out(*path, *rotation);
    bool writable = static_cast<bool>(out.open());
    char buf[64 * 1024];
    for (;;) {
      ssize_t n = ::read(0, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      // A failed write (full disk) drops these bytes but keeps the pipe drained: the app must
      // never block on its own output.
      if (writable) out.write(buf, static_cast<size_t>(n));
    }
  });
}

}  // namespace berth
