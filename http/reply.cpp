#include "http/reply.hpp"

#include "messages/event.hpp"

namespace berth::http {

int http_status(errc x) {
  switch (x) {
    case errc::invalid_name:
    case errc::invalid_manifest:
    case errc::invalid_request: return 400;
    case errc::not_found: return 404;
    case errc::already_exists:
    case errc::conflict:
    case errc::limits_unavailable:
    case errc::runtime_unavailable: return 409;
    case errc::ports_exhausted:
    case errc::unavailable: return 503;
    case errc::insufficient_storage: return 507;
    default: return 500;
  }
}

void reply_raw_json(httplib::Response& res, int status, const std::string& body) {
  res.status = status;
  res.set_content(body, "application/json");
}

void reply_json(httplib::Response& res, int status, const nlohmann::json& body) {
  reply_raw_json(res, status, dump_json(body));
}

void reply_error(httplib::Response& res, int status, const std::string& code,
                 const std::string& message) {
  reply_json(res, status, {{"error", {{"code", code}, {"message", message}}}});
}

void reply_error(httplib::Response& res, errc code, const std::string& message) {
  reply_error(res, http_status(code), code_name(code), message);
}

void reply_error(httplib::Response& res, const caf::error& err) {
  auto v = view(err);
  reply_error(res, v.code, v.message.empty() ? code_name(v.code) : v.message);
}

void reply_saturated(httplib::Response& res, const std::string& message, int retry_after_s) {
  reply_error(res, 503, "saturated", message);
  res.set_header("Retry-After", std::to_string(retry_after_s));
}

}  // namespace berth::http
