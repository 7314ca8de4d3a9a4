// Folders only berth's user may enter (the data dir, Caddy's admin socket folder, the audit
// key's folder) and the secret files kept in them (the API token, the audit key). No actor
// code; plain syscalls, safe from any thread.
#pragma once
#include <sys/types.h>

#include <string>

#include "runtime/status.hpp"

namespace berth {

// "0755" for a mode's permission bits.
std::string octal_mode(mode_t m);

// What secure_private_dir found and did.
struct private_dir_result {
  bool created = false;     // it did not exist and was made 0700
  bool tightened = false;   // it existed with group/other bits, now 0700
  mode_t was = 0;           // its permission bits before (when it existed)
};

// Makes `path` (and missing parents) a directory of berth's user with mode 0700: created 0700
// when missing; when it exists with group/other permissions it is chmod'ed to 0700 (reported
// in *out, so the caller can log it). Refused (invalid_argument, a message naming the
// folder, its owner and what to do) when it is not a directory, is a symbolic link, or belongs
// to another uid. Errors: io_error when it cannot be created or changed.
status secure_private_dir(const std::string& path, private_dir_result* out = nullptr);

// The same, for folders berth manages under the data dir (no report needed).
inline status make_private_dir(const std::string& path) { return secure_private_dir(path, nullptr); }

// Reads a file that must be berth's secret alone: a regular file (never through a symbolic
// link) of berth's user with no group/other bits, at most `max_bytes` (more is cut off).
// `what` names it in messages ("the token file"); `if_loose` is appended when its mode is too
// wide (what the operator should do). Errors: not_found (missing), invalid_argument (refused,
// saying why), io_error (cannot be opened or read).
status read_private_file(const std::string& path, const std::string& what, size_t max_bytes,
                         const std::string& if_loose, std::string* content);

}  // namespace berth
