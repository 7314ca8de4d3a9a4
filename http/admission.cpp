// The checks every request passes once its headers are parsed (token, body framing, body
// size), and the JSON error answers for what the connection limits or httplib refuse.
#include <cstdint>
#include <string>
#include <string_view>

#include "http/auth.hpp"
#include "http/connection.hpp"
#include "http/reply.hpp"

namespace berth::http::connection_detail {

namespace {

bool parse_length(const std::string& s, uint64_t& out) {
  if (s.empty() || s.size() > 19 || s.find_first_not_of("0123456789") != std::string::npos) return false;
  out = std::stoull(s);
  return true;
}

}  // namespace

bool is_upload_route(const httplib::Request& req) {
  static const std::string prefix = "/api/projects/";
  if (req.method != "PUT" || req.path.compare(0, prefix.size(), prefix) != 0) return false;
  auto slash = req.path.find('/', prefix.size());
  if (slash == std::string::npos || slash == prefix.size()) return false;
  auto rest = std::string_view(req.path).substr(slash);  // "/source" or "/source/<path>"
  return rest == "/source" || (rest.size() > 8 && rest.compare(0, 8, "/source/") == 0);
}

clock_type::duration upload_body_timeout(uint64_t declared) {
  return body_timeout + std::chrono::seconds(declared >> 20);
}

bool admit(const httplib::Request& req, httplib::Response& res, const std::string& token,
           const admission_limits& limits) {
  auto* r = t_request;
  const bool upload = is_upload_route(req);
  if (r != nullptr && !r->head_done) {
    r->head_done = true;
    uint64_t declared = 0;
    if (req.get_header_value_count("Content-Length") == 1 &&
        parse_length(req.get_header_value("Content-Length"), declared))
      r->body_left = declared;
    r->body_deadline = clock_type::now() + (upload ? upload_body_timeout(r->body_left) : body_timeout);
  }
  // A body that is not read (this one, when refused) ends the connection: see close_after().
  auto refuse = [&](int status, const std::string& code, const std::string& message) {
    reply_error(res, status, code, message);
    if (r != nullptr) r->must_close = true;  // the body's framing cannot be trusted
    return false;
  };
  if (!authorize(req, res, token, limits.metrics_public)) return false;
  if (r != nullptr && r->line_too_long)  // in case httplib let it through
    return refuse(431, "headers_too_large", "a header line is longer than " + std::to_string(line_limit) + " bytes");
  if (req.has_header("Transfer-Encoding"))
    return refuse(411, "length_required",
                  "request bodies must be sent with Content-Length; Transfer-Encoding is not accepted");
  auto lengths = req.get_header_value_count("Content-Length");
  if (lengths > 1) return refuse(400, "bad_request", "more than one Content-Length header");
  if (upload && lengths == 0)
    return refuse(411, "length_required", "an upload must be sent with Content-Length");
  // httplib would inflate it on the fly, past every size limit: uploads go as they are.
  if (upload && req.has_header("Content-Encoding") && req.get_header_value("Content-Encoding") != "identity")
    return refuse(415, "unsupported_media_type",
                  "an upload is sent without Content-Encoding (a .tar.gz body is application/gzip as it is)");
  if (lengths == 1) {
    uint64_t declared = 0;
    if (!parse_length(req.get_header_value("Content-Length"), declared))
      return refuse(400, "bad_request", "Content-Length must be a decimal number");
    if (upload && declared > limits.max_upload) {
      reply_error(res, 413, "payload_too_large",
                  "the upload is larger than " + std::to_string(limits.max_upload) + " bytes (--max-upload-bytes)");
      return false;
    }
    if (!upload && declared > limits.max_body) {
      reply_error(res, 413, "payload_too_large",
                  "the request body is larger than " + std::to_string(limits.max_body) + " bytes (--max-body-bytes)");
      return false;
    }
  }
  return true;
}

httplib::Server::HandlerResponse json_errors(const httplib::Request&, httplib::Response& res) {
  if (!res.body.empty()) return httplib::Server::HandlerResponse::Handled;
  if (auto* r = t_request; r != nullptr && res.status == 400) {
    if (r->timed_out) {
      reply_error(res, 408, "request_timeout", "the request was not received in time");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (r->head_too_large || r->line_too_long) {
      reply_error(res, 431, "headers_too_large",
                  r->line_too_long ? "a header line is longer than " + std::to_string(line_limit) + " bytes"
                                   : "the request headers are larger than " + std::to_string(head_limit) + " bytes");
      return httplib::Server::HandlerResponse::Handled;
    }
  }
  switch (res.status) {
    case 404: reply_error(res, 404, "not_found", "no such route"); break;
    case 405: reply_error(res, 405, "method_not_allowed", "method not allowed"); break;
    case 408: reply_error(res, 408, "request_timeout", "the request was not received in time"); break;
    case 413: reply_error(res, 413, "payload_too_large", "request body is too large"); break;
    case 414:
      reply_error(res, 414, "uri_too_long", "the request line is longer than " + std::to_string(line_limit) + " bytes");
      break;
    case 415: reply_error(res, 415, "unsupported_media_type", "unsupported Content-Encoding"); break;
    default:
      reply_error(res, res.status, res.status >= 500 ? "internal" : "bad_request",
                  res.status >= 500 ? "internal error" : "malformed request");
      break;
  }
  return httplib::Server::HandlerResponse::Handled;
}

void mark_close(const httplib::Request&, httplib::Response& res) {
  auto* r = t_request;
  if (r == nullptr || !r->close_after() || res.get_header_value("Connection") == "close") return;
  res.headers.erase("Keep-Alive");
  res.set_header("Connection", "close");
}

}  // namespace berth::http::connection_detail
