// What every client verb shares: the common flags, calling the API with one clear line and an
// exit code for every failure (exit_codes.hpp), and printing.
#pragma once
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/client/exit_codes.hpp"
#include "cli/client/http_client.hpp"

namespace CLI {
class App;
}

namespace berth::cli {

using json = nlohmann::json;

// Adds --url, --token, --data, --cacert and --json (else BERTH_URL, BERTH_TOKEN, BERTH_DATA,
// BERTH_CACERT) to a verb and sets its callback: runs `body` with a client for them; a
// `failure` (or any exception) becomes "berth: <message>" on stderr and the exit code;
// `body` returns the code.
void on_run(CLI::App* verb, std::function<int(http_client&)> body);

// Calls the API and returns the answer's JSON; any answer but 2xx throws a `failure` with the
// server's message and the exit code its status maps to.
json call(http_client& api, const std::string& method, const std::string& path, const json& body = nullptr);

// The failure for a non-2xx answer (or no answer at all).
failure failure_of(const response& r, const client_options& opts);

// The project path /api/projects/<name>[rest], the name escaped.
std::string project_path(http_client& api, const std::string& name, const std::string& rest = "");

bool stdout_is_terminal();
// The JSON for scripts: one compact line.
void print_json_line(const json& j);
// A string field of `j`, or `fallback` when missing or not a string.
std::string str(const json& j, const char* key, const std::string& fallback = "-");

}  // namespace berth::cli
