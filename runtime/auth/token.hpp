// The API bearer token file, <data>/token: read it, or create it once with a fresh random
// token, mode 0600. No actors here; `berth serve` calls this before anything listens.
#pragma once
#include <string>

namespace berth {

// A fresh token: 32 bytes from OpenSSL's RAND_bytes as base64url without padding
// (43 characters). Throws std::runtime_error when the RNG fails.
std::string generate_token();

// Characters and length a token may have (the same rule as the --token option): 16-256 of
// A-Z a-z 0-9 - . _ ~ + / =.
bool valid_token(const std::string& token);

enum class token_file_status {
  loaded,   // the file existed and was usable
  created,  // there was none; a new one was written
  missing,  // there is none (load_token_file only)
  refused,  // there is one, but it cannot be used (see error)
};

// Reads `path`. The file must be a regular file (not a symlink) owned by this user with no
// permission bits for group or others (0600 or narrower, as ssh demands of private keys: a
// token others could read is considered leaked, so berth refuses instead of fixing the
// mode), and hold one valid token (a trailing newline is allowed). `error` says what is
// wrong and what to do; it never contains the token.
token_file_status load_token_file(const std::string& path, std::string& token, std::string& error);

// load_token_file, and when there is no file: writes a new random token to a temporary file
// (O_CREAT|O_EXCL, 0600, fsynced) and links it to `path`, which fails if `path` appeared
// meanwhile (then that one is loaded). A crash never leaves a partial token file behind.
token_file_status load_or_create_token_file(const std::string& path, std::string& token,
                                            std::string& error);

}  // namespace berth
