#include "http/reply.hpp"

namespace berth::http {

void reply_raw_json(httplib::Response& res, int status, const std::string& body) {
  res.status = status;
  res.set_content(body, "application/json");
}

void reply_json(httplib::Response& res, int status, const nlohmann::json& body) {
  reply_raw_json(res, status, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
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

}  // namespace berth::http
