// Internal to http/: the bytes of the source routes (routes_source.cpp) on their way between the
// socket and the disk, streamed in both directions so that no body is ever held in memory.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>

#include "runtime/status.hpp"

namespace httplib {
class ContentReader;
struct Response;
}  // namespace httplib

namespace berth::http {

// Streams a request body of `declared` bytes (its Content-Length) into `file`, which is
// created (0600; O_EXCL, O_NOFOLLOW) and synced. Checks berth's disk guard before and every few
// MiB while writing. ok; no_space (the disk is full); io_error; invalid_argument when the body
// ended before `declared` bytes (the client went away or was too slow).
status receive_body(const httplib::ContentReader& reader, uint64_t declared, const std::filesystem::path& file);

// The SHA-256 (64 hex chars) of the first `size` bytes of the open file `fd` (read with pread,
// so its offset is unchanged). io_error when it cannot be read or is shorter.
status sha256_of(int fd, uint64_t size, std::string* hex);

// Answers `res` with the first `size` bytes of the open file `fd` as application/octet-stream,
// read as they are sent; `res` owns `fd` from here on (closed once sent or abandoned).
void send_file(httplib::Response& res, int fd, uint64_t size);

}  // namespace berth::http
