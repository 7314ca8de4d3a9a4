// berth-log-writer --max-bytes N --files K PATH: the log writer every app's output goes
// through (runtime/logs/log_writer.hpp). A binary of its own because one runs per app: its
// exec costs about 1 ms, where berth's own binary (CAF, RocksDB, curl, ... to load) took 20.
#include <CLI/CLI.hpp>

#include "runtime/logs/log_writer.hpp"

int main(int argc, char** argv) {
  CLI::App app{"copies stdin into a file rotated by size (started by berth for each app)"};
  berth::log_rotation rotation;
  std::string path;
  app.add_option("--max-bytes", rotation.max_bytes)->required();
  app.add_option("--files", rotation.files)->required()->check(CLI::Range(1, 1000));
  app.add_option("path", path)->required();
  CLI11_PARSE(app, argc, argv);
  berth::copy_into_rotating_file(0, path, rotation);
  return 0;
}
