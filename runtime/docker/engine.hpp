// A client of the Docker Engine API (v1.41: Debian's docker.io 20.10) over its unix socket,
// with libcurl (CURLOPT_UNIX_SOCKET_PATH) and nlohmann/json: never the `docker` CLI. In the
// spirit of LevelDB's `DB`: a few verbs, each with its contract.
//
// Common to every verb: blocking (call it off CAF's scheduler); thread-safe (each call has its
// own curl handle); `path` is the API path without the version ("/containers/json?all=1"), to
// which "/v1.41" is prefixed. A reply with any HTTP status is ok() with `http` set: what a 404
// or a 409 means is the caller's business. io_error: the engine could not be reached, or did
// not answer within the timeout (the engine is down: a transient failure).
#pragma once
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/status.hpp"

namespace berth {

struct engine_reply {
  long http = 0;             // the HTTP status
  nlohmann::json body;       // the JSON body (null when there is none or it is not JSON)
  std::string raw;           // the body as received
  bool ok() const { return http >= 200 && http < 300; }
  // The engine's own words for a failed reply: body.message, else the raw body, with the status.
  std::string error() const;
};

class docker_engine {
 public:
  // `host`: "unix:///path/docker.sock" or a bare socket path.
  explicit docker_engine(std::string host);
  const std::string& socket_path() const { return socket_; }

  // One request with an optional JSON body (null: none), waiting up to `timeout`.
  status call(const std::string& method, const std::string& path, const nlohmann::json& body, engine_reply* out,
              std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;

  // One request whose body is `body` as it is, with `content_type` (PUT /containers/{id}/archive
  // with a tar); otherwise as call().
  status call_raw(const std::string& method, const std::string& path, const std::string& body,
                  const std::string& content_type, engine_reply* out,
                  std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;

  // A request answered by a stream of JSON messages (POST /build, POST /images/{}/push,
  // GET /events): `on_message` gets each one as it arrives; returning false ends the stream
  // (then ok). `body_file` is streamed as the body ("": none) with `content_type`; `headers`
  // are extra lines ("X-Registry-Auth: ..."). `cancelled` is polled at least every 100 ms:
  // true ends the stream (ok). `timeout`: 0 = none (an events stream). *http: the status.
  status stream_json(const std::string& method, const std::string& path, const std::filesystem::path& body_file,
                     const std::string& content_type, const std::vector<std::string>& headers,
                     const std::function<bool(const nlohmann::json&)>& on_message,
                     const std::function<bool()>& cancelled, std::chrono::milliseconds timeout,
                     long* http = nullptr) const;

  // A container's output (GET /containers/{id}/logs?follow=...&stdout=1&stderr=1&timestamps=0):
  // the multiplexed stream (8-byte frame headers) decoded, or passed through as it is for a
  // container with a TTY; each chunk goes to `on_output` (is_stderr tells which). Returning
  // false, or `cancelled` returning true, ends it (ok). *http: the status.
  status stream_logs(const std::string& path,
                     const std::function<bool(const char* data, size_t size, bool is_stderr)>& on_output,
                     const std::function<bool()>& cancelled, std::chrono::milliseconds timeout,
                     long* http = nullptr) const;

  // GET /_ping within `timeout`: ok when the engine answers "OK".
  status ping(std::chrono::milliseconds timeout = std::chrono::seconds(2)) const;

 private:
  std::string socket_;
};

// The engine address berth uses when none is configured: DOCKER_HOST when it names a unix
// socket, else unix:///var/run/docker.sock.
std::string default_docker_host();

// Percent-encodes a query value (filters={"label":["berth.project=shop"]}).
std::string url_encode(const std::string& s);

}  // namespace berth
