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
// The same for any program (`args[0]` an absolute path).
run_result run_program(const std::vector<std::string>& args, const env_list& env, const std::string& stdin_text = "",
                       std::chrono::milliseconds timeout = std::chrono::seconds(120));

// The non-empty lines of `text`.
std::vector<std::string> lines_of(const std::string& text);
inline bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }
// Each line of a --json run's stdout parsed (a line that is not a JSON object fails the test).
std::vector<json> json_lines(const run_result& r);
// The project's current production release ("" when none).
std::string current_release(server& srv, const std::string& name);
// Each of `lines` occurs exactly once in `text` (checked).
void each_once(const std::string& text, const std::vector<std::string>& lines);
// "<tag> 000000\n" ... as the lines app (tests/apps/lines) prints them, from..to-1.
std::vector<std::string> numbered_lines(const std::string& tag, int from, int to);
// Now as ISO-8601 UTC with microseconds.
std::string iso_now();

}  // namespace berth::it
