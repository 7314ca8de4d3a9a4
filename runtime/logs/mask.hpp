// Masking secret values in every log berth serves or writes: a deployment's log (its file, its
// detail answer, its SSE stream) and the app logs route (http/routes_logs.cpp). ONE function does it
// (mask_secrets), so that what is hidden does not depend on which route shows a line.
//
// For a new log route: read the project's secrets when the request comes (blocking; on a
// worker), `secret_mask mask(read_secrets_file(paths));`, and pass every line through
// `mask_secrets(lines, mask)` before it is rendered; a stream (SSE, a followed file) cuts its
// bytes into lines first (masked_lines, or log_follower's lines) so no value is split.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/logs/log_follower.hpp"

namespace berth {

// The set of values to hide, made once from a project's secrets (cheap to copy; immutable, so
// it may be shared between threads).
//
// - Every value of at least `min_length` bytes is masked. Shorter ones are not: masking "1" or
//   "on" would mangle every line, and the gaps would tell the value anyway. README says so.
// - A multi-line value (a PEM key) is also masked line by line (each of its lines of at least
//   `min_length` bytes, without a trailing '\r'), because logs are cut into lines before they
//   are masked: a key printed whole is hidden line by line.
class secret_mask {
 public:
  static constexpr size_t min_length = 4;
  static constexpr std::string_view replacement = "********";

  secret_mask() = default;  // masks nothing
  explicit secret_mask(const std::map<std::string, std::string>& secrets);  // by value
  bool empty() const { return values_.empty(); }
  const std::vector<std::string>& values() const { return values_; }  // longest first

 private:
  std::vector<std::string> values_;
};

// `text` with every byte that belongs to an occurrence of a masked value replaced: each
// maximal run of such bytes becomes one `********`. Overlapping or adjacent secrets ("abcd"
// and "cdef" in "abcdef") are hidden whole, whichever is longer. Pure, thread-safe.
// A value split across two calls is NOT found: callers that mask a stream cut it into lines
// first (masked_lines below), so a value is only missed if it spans lines (see secret_mask)
// or a line longer than line_splitter's limit cuts through it.
std::string mask_secrets(std::string_view text, const secret_mask& mask);
std::vector<std::string> mask_secrets(std::vector<std::string> lines, const secret_mask& mask);

// A byte stream (a build's output) cut into lines and masked: what feed() returns never holds
// a value written in pieces, since a line is only masked once it is complete.
class masked_lines {
 public:
  explicit masked_lines(secret_mask mask, size_t max_line = 64 * 1024) : mask_(std::move(mask)), split_(max_line) {}
  std::vector<std::string> feed(std::string_view chunk) { return mask_secrets(split_.feed(chunk), mask_); }
  // The unterminated rest, masked; afterwards nothing is pending.
  std::optional<std::string> flush();

 private:
  secret_mask mask_;
  line_splitter split_;
};

}  // namespace berth
