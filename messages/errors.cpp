#include "messages/errors.hpp"

#include <caf/sec.hpp>

namespace berth {

const char* code_name(errc x) {
  switch (x) {
    case errc::nil: return "ok";
    case errc::invalid_name: return "invalid_name";
    case errc::invalid_manifest: return "invalid_manifest";
    case errc::invalid_request: return "invalid_request";
    case errc::not_found: return "not_found";
    case errc::already_exists: return "already_exists";
    case errc::conflict: return "conflict";
    case errc::ports_exhausted: return "ports_exhausted";
    case errc::storage_error: return "storage_error";
    case errc::restart_intensity: return "restart_intensity";
    case errc::unavailable: return "unavailable";
    case errc::internal: return "internal";
    case errc::limits_unavailable: return "limits_unavailable";
    case errc::insufficient_storage: return "insufficient_storage";
    case errc::runtime_unavailable: return "runtime_unavailable";
  }
  return "internal";
}

std::string to_string(errc x) { return code_name(x); }

error_view view(const caf::error& err) {
  if (!err) return {errc::nil, ""};
  if (err.category() == caf::atom("berth")) {
    std::string msg;
    if (!err.context().empty() && err.context().match_element<std::string>(0))
      msg = err.context().get_as<std::string>(0);
    return {static_cast<errc>(err.code()), msg};
  }
  if (err == caf::sec::request_timeout) return {errc::unavailable, "request timed out"};
  if (err == caf::sec::request_receiver_down)
    return {errc::unavailable, "the actor handling this request is restarting"};
  return {errc::internal, "internal error"};
}

}  // namespace berth
