// Error vocabulary shared by actors, http and the CLI.
#pragma once
#include <cstdint>
#include <string>

#include <caf/error.hpp>
#include <caf/make_message.hpp>

namespace berth {

enum class errc : uint8_t {
  nil = 0,
  invalid_name,
  invalid_manifest,
  invalid_request,
  not_found,
  already_exists,
  conflict,
  ports_exhausted,
  storage_error,
  restart_intensity,   // supervisor escalation
  unavailable,
  internal,
  limits_unavailable,  // a manifest sets limits where berth cannot apply them (no cgroups)
  insufficient_storage,  // the disk is full: 507, the write was refused and nothing was kept
  runtime_unavailable,   // a manifest's runtime cannot run on this server (no engine, no proxy for swarm)
};

std::string to_string(errc x);
// The code string used in JSON errors, e.g. "invalid_name".
const char* code_name(errc x);

inline caf::error make_error(errc x, std::string message) {
  return caf::error{static_cast<uint8_t>(x), caf::atom("berth"),
                    caf::make_message(std::move(message))};
}

// Extracts berth's errc and message from an error (others map to internal/unavailable).
struct error_view {
  errc code;
  std::string message;
};
error_view view(const caf::error& err);

// A failed write as an error: insufficient_storage when the disk is full, else storage_error.
inline caf::error storage_failure(bool no_space, std::string message) {
  return make_error(no_space ? errc::insufficient_storage : errc::storage_error, std::move(message));
}

}  // namespace berth
