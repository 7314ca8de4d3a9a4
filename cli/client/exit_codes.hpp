// The client verbs' exit codes (README "The berth CLI"), and the one failure type they throw:
// a verb fails with one line for stderr and its exit code, never a stack of errors.
#pragma once
#include <stdexcept>
#include <string>

namespace berth::cli {

constexpr int exit_ok = 0;
constexpr int exit_failed = 1;       // the operation ran and failed (deploy failed, 409, cancelled)
constexpr int exit_usage = 2;        // bad arguments or input (also the server's 400/413)
constexpr int exit_not_found = 3;    // no such project, deployment or release (404)
constexpr int exit_unreachable = 4;  // no answer from the server, TLS refused, or 401/403
constexpr int exit_server = 5;       // the server answered 5xx (busy, starting, internal error)

struct failure : std::runtime_error {
  failure(int code, const std::string& line) : std::runtime_error(line), code(code) {}
  int code;
};

}  // namespace berth::cli
