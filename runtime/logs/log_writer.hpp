// What an app's log writer does (`berth-log-writer`, or `berth log-writer` when that small
// binary is missing): copies its stdin (the app's stdout and stderr) into a file rotated by
// size. It runs in the app's session and process group, so it outlives berth with the app.
#pragma once
#include <string>

#include "runtime/logs/rotating_file.hpp"

namespace berth {

// Ignores SIGTERM/SIGINT/SIGHUP/SIGPIPE (the app's last lines are still written), then copies
// `in_fd` into `path` until end of input (every writer of the pipe gone). A failed write (full
// disk) drops those bytes but keeps the pipe drained: the app never blocks on its output.
void copy_into_rotating_file(int in_fd, const std::string& path, log_rotation rotation);

// The small log writer's file name, beside berth's own binary (built with it).
constexpr const char* log_writer_binary = "berth-log-writer";

}  // namespace berth
