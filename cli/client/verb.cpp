#include "cli/client/verb.hpp"

#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

namespace berth::cli {

namespace {

// Every verb binds the same options (only one verb runs), so the BERTH_* variables are read
// here, for the verb that runs, and not with CLI11's envname: CLI11 applies a variable to the
// options of every subcommand, parsed or not, and would overwrite a flag given to this one.
void from_env(const CLI::Option* given, std::string& value, const char* variable) {
  const char* v = std::getenv(variable);
  if (given->count() == 0 && v && *v) value = v;
}

}  // namespace

void on_run(CLI::App* verb, std::function<int(http_client&)> body) {
  static client_options opts;
  auto* url = verb->add_option("--url", opts.url, "berth server URL (BERTH_URL; default http://127.0.0.1:7070)");
  auto* token = verb->add_option("--token", opts.token, "API token (BERTH_TOKEN; default: <data>/token)");
  auto* data = verb->add_option("--data", opts.data, "a local server's data dir (BERTH_DATA; default ./berth-data)");
  auto* cacert = verb->add_option("--cacert", opts.cacert, "CA bundle for an https server (BERTH_CACERT)");
  verb->add_flag("--json", opts.json, "print the server's JSON (one object per line for streams)");
  verb->callback([=, body = std::move(body)] {
    from_env(url, opts.url, "BERTH_URL");
    from_env(token, opts.token, "BERTH_TOKEN");
    from_env(data, opts.data, "BERTH_DATA");
    from_env(cacert, opts.cacert, "BERTH_CACERT");
    int code = exit_ok;
    try {
      http_client api(opts);
      code = body(api);
    } catch (const failure& f) {
      std::cout.flush();
      std::cerr << "berth: " << f.what() << "\n";
      code = f.code;
    } catch (const std::exception& e) {
      std::cout.flush();
      std::cerr << "berth: " << e.what() << "\n";
      code = exit_failed;
    }
    std::cout.flush();
    if (code != exit_ok) throw CLI::RuntimeError(code);
  });
}

failure failure_of(const response& r, const client_options& opts) {
  if (r.status == 0) return failure(exit_unreachable, fmt::format("cannot reach berth at {}: {}", opts.url, r.error));
  auto j = json::parse(r.body, nullptr, false);
  std::string code = "http_" + std::to_string(r.status);
  std::string message = "the server answered HTTP " + std::to_string(r.status);
  if (j.is_object() && j.contains("error") && j["error"].is_object()) {
    code = str(j["error"], "code", code);
    message = str(j["error"], "message", message);
  }
  auto line = fmt::format("{} ({})", message, code);
  if (r.status == 401 || r.status == 403)
    return failure(exit_unreachable, line + "; give the token with --token or BERTH_TOKEN, or --data for <data>/token");
  if (r.status == 404) return failure(exit_not_found, line);
  if (r.status == 400 || r.status == 413 || r.status == 422) return failure(exit_usage, line);
  if (r.status >= 500) return failure(exit_server, line);
  return failure(exit_failed, line);
}

json call(http_client& api, const std::string& method, const std::string& path, const json& body) {
  auto r = api.request(method, path, body.is_null() ? "" : body.dump());
  if (r.status < 200 || r.status > 299) throw failure_of(r, api.options());
  auto j = json::parse(r.body, nullptr, false);
  if (j.is_discarded()) throw failure(exit_server, "the server's answer is not JSON");
  return j;
}

std::string project_path(http_client& api, const std::string& name, const std::string& rest) {
  return "/api/projects/" + api.escape(name) + rest;
}

bool stdout_is_terminal() { return ::isatty(STDOUT_FILENO) == 1; }

void print_json_line(const json& j) { std::cout << j.dump(-1, ' ', false, json::error_handler_t::replace) << "\n"; }

std::string str(const json& j, const char* key, const std::string& fallback) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() && !it->get<std::string>().empty() ? it->get<std::string>() : fallback;
}

}  // namespace berth::cli
