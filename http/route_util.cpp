#include "http/route_util.hpp"

#include <algorithm>

#include <httplib.h>

#include "actors/names.hpp"
#include "http/reply.hpp"
#include "messages/event.hpp"
#include "messages/manifest.hpp"

namespace berth::http {

caf::actor projects(const context& ctx) { return names::whereis(ctx.sys, names::projects); }

bool path_name(const httplib::Request& req, httplib::Response& res, std::string& name) {
  name = req.matches[1];
  if (auto nc = check_name(name); !nc.valid) {
    reply_error(res, errc::invalid_name, "project name " + nc.reason);
    return false;
  }
  return true;
}

bool query_u64(const httplib::Request& req, httplib::Response& res, const char* key, uint64_t fallback,
               uint64_t min, uint64_t max, uint64_t& out) {
  out = fallback;
  if (!req.has_param(key)) return true;
  auto text = req.get_param_value(key);
  try {
    size_t used = 0;
    if (!text.empty() && text[0] != '-') {
      out = std::stoull(text, &used);
      if (used == text.size() && out >= min && out <= max) return true;
    }
  } catch (...) {
  }
  reply_error(res, errc::invalid_request,
              std::string("query parameter '") + key + "' must be an integer from " + std::to_string(min) +
                  " to " + std::to_string(max));
  return false;
}

bool query_time(const httplib::Request& req, httplib::Response& res, const char* key, int64_t fallback,
                int64_t& out) {
  out = fallback;
  if (!req.has_param(key)) return true;
  auto text = req.get_param_value(key);
  // A '+' left unescaped in a query string arrives decoded as a space: "…T10:00:00 01:00".
  if (text.size() > 19) std::replace(text.begin() + 19, text.end(), ' ', '+');
  if (parse_iso8601(text, out)) return true;
  reply_error(res, errc::invalid_request,
              std::string("query parameter '") + key +
                  "' must be an ISO-8601 time such as 2026-11-23T10:00:00Z, 2026-11-23T10:00:00.5Z or "
                  "2026-11-23T11:00:00+01:00");
  return false;
}

bool body_object(const httplib::Request& req, httplib::Response& res, const std::vector<std::string>& allowed,
                 nlohmann::json& out, bool empty_is_object) {
  if (empty_is_object && req.body.find_first_not_of(" \t\r\n\f\v") == std::string::npos) {
    out = nlohmann::json::object();
    return true;
  }
  out = nlohmann::json::parse(req.body, nullptr, false);
  if (out.is_discarded()) {
    reply_error(res, errc::invalid_request, "request body is not valid JSON");
    return false;
  }
  std::string fields;
  for (auto& a : allowed) fields += (fields.empty() ? "'" : ", '") + a + "'";
  if (!out.is_object()) {
    reply_error(res, errc::invalid_request, "request body must be a JSON object (fields: " + fields + ")");
    return false;
  }
  for (auto& [key, value] : out.items())
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      reply_error(res, errc::invalid_request,
                  "unknown field '" + key + "' in request body (" +
                      (fields.empty() ? std::string("this action takes none") : "allowed: " + fields) + ")");
      return false;
    }
  return true;
}

bool no_body(const httplib::Request& req, httplib::Response& res) {
  nlohmann::json ignored;
  return body_object(req, res, {}, ignored);
}

bool may_wait_long(const long_wait& w, httplib::Response& res) {
  if (w.granted()) return true;
  auto* d = dispatcher::current();
  reply_saturated(res,
                  "berth is saturated: " + std::to_string(d ? d->limits().long_calls : 0) +
                      " calls are already waiting for a long operation (--http-long-calls); retry later",
                  5);
  return false;
}

bool may_stream(const stream_slot& s, httplib::Response& res) {
  if (s.granted()) return true;
  auto* d = dispatcher::current();
  reply_saturated(res,
                  "berth is saturated: " + std::to_string(d ? d->limits().streams : 0) +
                      " event streams are already open (--http-streams); retry later",
                  5);
  return false;
}

void serve_event_stream(httplib::Response& res, std::shared_ptr<stream_slot> slot,
                        std::function<bool(httplib::DataSink&)> step) {
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  // Exactly "text/event-stream": httplib compresses every other text/* type, which would hold
  // the events back until the end.
  res.set_chunked_content_provider("text/event-stream",
                                   [slot = std::move(slot), step = std::move(step)](size_t, httplib::DataSink& sink) {
                                     try {
                                       return step(sink);
                                     } catch (...) {
                                       return false;  // an exception must not leave the provider
                                     }
                                   });
}

nlohmann::json http_load_json(const dispatcher& d) {
  auto load = d.current_load();
  auto& limits = d.limits();
  return {{"workers", limits.workers},      {"running", load.running},
          {"queued", load.queued},          {"queue_limit", limits.queue},
          {"long_calls", load.waiting_long}, {"long_call_limit", limits.long_calls},
          {"streams", load.streams},        {"stream_limit", limits.streams}};
}

}  // namespace berth::http
