// Helpers for integration tests that run a real `berth serve` (BERTH_BINARY) on a free port
// and drive it over HTTP, plus `berth audit` runs. Every wait is bounded.
#pragma once
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/common/support.hpp"

#ifndef BERTH_BINARY
#error "BERTH_BINARY must be defined (absolute path of the built berth binary)"
#endif

namespace httplib {
class Client;
}

namespace berth::it {

using json = nlohmann::json;
using env_list = std::vector<std::pair<std::string, std::string>>;

inline const std::string berth_binary = BERTH_BINARY;

// A fresh directory under $TMPDIR (or /tmp), removed recursively on destruction
// (kept when BERTH_IT_KEEP is set, for post-mortems).
class temp_dir {
 public:
  temp_dir();
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

// A port that was free a moment ago: bind 127.0.0.1:0, read it back, close.
uint16_t free_port();

// Names of the entries in a directory (empty when missing).
std::set<std::string> list_dir(const std::string& path);


// ---- HTTP ---------------------------------------------------------------------------------

struct http_result {
  int status = -1;     // -1: no response (connection error, timeout)
  std::string error;   // httplib's error when status == -1
  std::string raw;     // body as received
  json body;           // parsed body; discarded (is_discarded()) when not JSON
  env_list headers;    // response headers as received
  std::string header(const std::string& name) const;  // case-insensitive; "" when missing
  bool is_json_error() const;  // body is {"error":{"code":string,"message":string}}
  std::string error_code() const;
  std::string describe() const;  // for failure messages
};

// ---- auth ----------------------------------------------------------------------------------
// Every server the harness starts gets a bearer token (BERTH_TOKEN) unless the test opts out,
// and every client sends the token of the server on its port, so tests need not care.

// The token this test process gives its servers (random per process).
const std::string& test_token();
// The token clients send to the server on `port`: the one a `server` registered for it when
// it started (its BERTH_TOKEN / --token, else the content of its <data>/token), else
// test_token().
std::string token_for(uint16_t port);
void set_token_for(uint16_t port, const std::string& token);
// Makes a raw httplib client send "Authorization: Bearer <token_for(port)>".
void use_token(httplib::Client& cli, uint16_t port);

// What a client sends as Authorization.
struct auth {
  enum class mode { server_token, none, header };
  mode how = mode::server_token;
  std::string value;  // the whole header value for mode::header
  static auth server_token() { return {}; }                 // Bearer token_for(port) (default)
  static auth none() { return {mode::none, ""}; }           // no Authorization header
  static auth bearer(const std::string& token) { return {mode::header, "Bearer " + token}; }
  static auth header(const std::string& value) { return {mode::header, value}; }  // raw value
};

// One keep-alive connection to a server on 127.0.0.1:port. Not thread-safe: one per thread.
class client {
 public:
  explicit client(uint16_t port, std::chrono::seconds read_timeout = std::chrono::seconds(20));
  client(uint16_t port, auth a, std::chrono::seconds read_timeout = std::chrono::seconds(20));
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;
  http_result get(const std::string& path);
  http_result post(const std::string& path, const std::string& body,
                   const std::string& content_type = "application/json");
  http_result post(const std::string& path, const json& body) { return post(path, body.dump()); }
  http_result put(const std::string& path, const std::string& body,
                  const std::string& content_type = "application/json");
  http_result put(const std::string& path, const json& body) { return put(path, body.dump()); }
  http_result del(const std::string& path);
  // Any method, with extra headers (added to the Authorization this client sends).
  http_result send(const std::string& method, const std::string& path, const std::string& body = "",
                   const env_list& headers = {}, const std::string& content_type = "application/json");

 private:
  uint16_t port_;
  auth auth_;
  std::unique_ptr<httplib::Client> cli_;
};

// ---- raw HTTP (for what httplib's client will not send) -------------------------------------

// The first HTTP response in `bytes` (as read from a socket).
struct raw_response {
  int status = -1;      // -1: no complete status line and headers
  std::string head;     // status line and headers
  std::string raw;      // the body (by Content-Length; all that came when there is none)
  json body;            // parsed body; discarded when not JSON
  bool complete = false;  // head and the whole Content-Length body arrived
  std::string header(const std::string& name) const;  // case-insensitive; "" when missing
  bool is_json_error() const;
  std::string error_code() const;
  std::string describe() const;
};
raw_response parse_response(const std::string& bytes);

// A plain TCP connection to 127.0.0.1:port, for requests byte by byte.
class raw_connection {
 public:
  explicit raw_connection(uint16_t port);  // throws std::runtime_error when it cannot connect
  ~raw_connection();
  raw_connection(const raw_connection&) = delete;
  raw_connection& operator=(const raw_connection&) = delete;
  bool send(const std::string& bytes);  // false once the server has closed or reset it
  // Reads what arrives within `wait`; false once the server has closed the connection.
  bool read_for(std::chrono::milliseconds wait);
  // Reads until the first response is complete, the server closes, or `timeout` passes.
  raw_response read_response(std::chrono::milliseconds timeout);
  // Reads until the server closes the connection (true) or `timeout` passes (false).
  bool wait_closed(std::chrono::milliseconds timeout);
  const std::string& received() const { return received_; }
  bool closed() const { return closed_; }

 private:
  int fd_ = -1;
  std::string received_;
  bool closed_ = false;
};

// Sends `bytes` on a fresh connection and reads the first response (bounded by `timeout`).
raw_response raw_request(uint16_t port, const std::string& bytes,
                         std::chrono::milliseconds timeout = std::chrono::seconds(10));

// One-shot helpers (a new connection each).
http_result http_get(uint16_t port, const std::string& path);
http_result http_post(uint16_t port, const std::string& path, const json& body);
http_result http_put(uint16_t port, const std::string& path, const json& body);
http_result http_del(uint16_t port, const std::string& path);

// ---- child processes ------------------------------------------------------------------------

// Result of running a program to completion.
struct run_result {
  int exit_code = -1;  // exit status; 128+signal when killed by a signal; -1 on timeout
  bool timed_out = false;
  std::string out, err;
  std::string describe() const;
};

// Runs berth with `args` (argv[1..]), no shell, stdout/stderr captured, killed after `timeout`.
// The child's environment is ours minus every BERTH_* variable, plus `env`.
run_result run(const std::vector<std::string>& args, const env_list& env = {},
               std::chrono::milliseconds timeout = std::chrono::seconds(60));

// A child process started with fork/execve, output appended to `log_path`.
class process {
 public:
  process() = default;
  ~process();  // SIGKILL + reap if still running
  process(const process&) = delete;
  process& operator=(const process&) = delete;

  void start(const std::vector<std::string>& argv, const env_list& env, const std::string& log_path);
  bool running();  // reaps it when it has exited
  pid_t pid() const { return pid_; }
  void signal(int sig);
  // Waits up to `timeout` for the exit; returns the status as run_result::exit_code does
  // (-1: still running).
  int wait(std::chrono::milliseconds timeout);
  int kill9();  // SIGKILL and reap
  int exit_status() const { return status_; }

 private:
  pid_t pid_ = -1;
  int status_ = -1;
};

struct server_options {
  std::vector<std::string> extra_args;  // appended after --listen/--data
  env_list env;                         // added to the child's environment
  bool pass_listen = true;              // add --listen 127.0.0.1:<port>
  bool pass_data = true;                // add --data <data dir>
  // Give berth test_token() as BERTH_TOKEN, unless extra_args has --token or env has
  // BERTH_TOKEN. False: berth finds its own (<data>/token; created on loopback).
  bool pass_token = true;
  bool env_has(const std::string& name) const {
    for (auto& [k, v] : env)
      if (k == name) return true;
    return false;
  }
};

// `berth serve --listen 127.0.0.1:<port> --data <dir>/data [extra]`, output in <dir>/server.log.
// The constructor starts it and waits (≤ 20 s) until GET /health answers 200, else throws
// std::runtime_error with the log.
class server {
 public:
  explicit server(const std::string& dir, server_options opts = {}, uint16_t port = 0);
  // Kills berth, then every process whose cwd is inside dir(): the apps berth started
  // outlive it by design and would keep their ports.
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  uint16_t port() const { return port_; }
  // The API token berth was given (or read from <data>/token after it started).
  const std::string& token() const { return token_; }
  const std::string& dir() const { return dir_; }
  std::string data_dir() const { return dir_ + "/data"; }
  std::string projects_dir() const { return data_dir() + "/projects"; }
  std::string log() const;  // contents of the log file
  bool running() { return proc_.running(); }
  pid_t pid() const { return proc_.pid(); }

  // Starts the process (if not running) and waits for /health.
  void start();
  int kill9();
  // SIGTERM, then waits up to `timeout` for the exit; returns the exit status (-1: it did not
  // exit in time, and it is then killed).
  int terminate(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  void restart() {
    if (proc_.running()) kill9();
    start();
  }

  client& api();  // a connection owned by the server object (for the test's main thread)
  json health();  // GET /health body (throws when not 200)
  uint64_t event_count() { return health().at("events").get<uint64_t>(); }

 private:
  std::string dir_;
  server_options opts_;
  uint16_t port_;
  process proc_;
  std::string token_;
  std::unique_ptr<client> api_;
};

// Waits (bounded) until GET /health on `port` answers 200; false on timeout or when `proc`
// exits first.
bool wait_healthy(uint16_t port, std::chrono::milliseconds timeout, process* proc = nullptr);

// A valid manifest for `name` whose source is the absolute path `path`.
json manifest_for(const std::string& name, const std::string& path);

}  // namespace berth::it
