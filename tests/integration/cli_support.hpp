// Running the real `berth` binary's client verbs as a child process against a test server
// (test_cli.cpp): arguments, stdin, captured output, exit code. Every wait is bounded.
#pragma once
#include <chrono>
#include <string>
#include <vector>

#include "tests/integration/harness.hpp"

namespace berth::it {

// The environment that points the client at `srv`: BERTH_URL and BERTH_TOKEN.
env_list cli_env(const server& srv);

// Runs `berth args...` with `stdin_text` as its stdin (a file, so not a terminal), stdout and
// stderr captured, the environment ours minus BERTH_* plus `env`; killed after `timeout`.
run_result run_cli(const std::vector<std::string>& args, const env_list& env, const std::string& stdin_text = "",
                   std::chrono::milliseconds timeout = std::chrono::seconds(120));

// The non-empty lines of `text`.
std::vector<std::string> lines_of(const std::string& text);

}  // namespace berth::it
