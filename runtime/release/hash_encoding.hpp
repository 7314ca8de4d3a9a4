// The release hash's encoding of numbers and strings (release.hpp: SHA-256 over the sorted
// paths, modes and bytes), shared by the hasher that reads every file (artifact_hash.cpp) and
// the one that resumes from a checkpoint (package_build.cpp), so the two cannot drift.
#pragma once
#include <cstdint>
#include <string>

namespace berth::release_detail {

// CRTP: `Digest` has bytes(const void*, size_t).
template <class Digest>
struct hash_encoding {
  // 8 bytes, big-endian.
  void u64(uint64_t v) {
    unsigned char b[8];
    for (int i = 7; i >= 0; --i, v >>= 8) b[i] = static_cast<unsigned char>(v & 0xff);
    static_cast<Digest*>(this)->bytes(b, sizeof b);
  }
  // Its length, then its bytes.
  void str(const std::string& s) {
    u64(s.size());
    static_cast<Digest*>(this)->bytes(s.data(), s.size());
  }
};

}  // namespace berth::release_detail
