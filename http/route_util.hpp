// Small helpers shared by the route files: the projects actor, names in paths, query
// parameters, request bodies.
#pragma once
#include <caf/all.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "http/dispatch.hpp"
#include "http/server.hpp"

namespace httplib {
struct Request;
struct Response;
class DataSink;
}  // namespace httplib

namespace berth::http {

// The projects actor as registered now (null while it restarts; ask() reports that).
caf::actor projects(const context& ctx);

// The project name in the path (req.matches[1]), or false after an invalid_name reply.
bool path_name(const httplib::Request& req, httplib::Response& res, std::string& name);

// Query parameter `key` as an integer in [min, max] (`fallback` when absent), or false
// after an invalid_request reply.
bool query_u64(const httplib::Request& req, httplib::Response& res, const char* key, uint64_t fallback,
               uint64_t min, uint64_t max, uint64_t& out);

// Query parameter `key` as an ISO-8601 instant in microseconds (`fallback` when absent):
// Z or ±hh:mm, optional fraction. False after an invalid_request reply.
bool query_time(const httplib::Request& req, httplib::Response& res, const char* key, int64_t fallback,
                int64_t& out);

// The body as a JSON object whose fields are all in `allowed` (an empty body is {} when
// `empty_is_object`), or false after an invalid_request reply.
bool body_object(const httplib::Request& req, httplib::Response& res, const std::vector<std::string>& allowed,
                 nlohmann::json& out, bool empty_is_object = true);

// For action routes without parameters: the body is empty or `{}`; anything else is refused
// rather than silently ignored.
bool no_body(const httplib::Request& req, httplib::Response& res);

// For a call that waits long for the actors, with `w` in scope for the wait (dispatch.hpp: its
// worker serves others meanwhile). False after a 503 `saturated` reply when too many calls
// already wait.
bool may_wait_long(const long_wait& w, httplib::Response& res);
// For an event stream (SSE), with `s` kept alive as long as the stream (capture it in the
// content provider). False after a 503 `saturated` reply with Retry-After when --http-streams
// streams are open (or --http-long-calls calls wait).
bool may_stream(const stream_slot& s, httplib::Response& res);
// Answers `res` as an event stream: each round of httplib's content provider calls `step`
// (false drops the connection; an exception does too), and `slot` lives as long as the stream.
void serve_event_stream(httplib::Response& res, std::shared_ptr<stream_slot> slot,
                        std::function<bool(httplib::DataSink&)> step);
// The workers' load and limits: {workers, running, queued, queue_limit, long_calls,
// long_call_limit, streams, stream_limit}.
nlohmann::json http_load_json(const dispatcher& d);

}  // namespace berth::http
