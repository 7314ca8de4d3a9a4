// Workspace source vocabulary: a project whose source is its own preview/src tree changes that
// tree through these messages (an upload, one file written or removed), and each change is one
// `source_updated` event in the project's stream carrying the tree's content hash.
#pragma once
#include <cstdint>
#include <string>

#include <caf/meta/type_name.hpp>

namespace berth {

namespace ev {
// {hash, files, bytes, via: upload|write|delete|seed|recovered|partial, path?}: the tree after the
// change (partial: a disk failure stopped it half-way; recovered: finished after a crash).
constexpr const char* source_updated = "source_updated";
}  // namespace ev

// A change the HTTP edge has staged (runtime/workspace/tree_change.hpp) and asks the project to
// apply: `op` is "upload" (staging/tree is the whole new tree), "write" (staging/file is the new
// content of `path`, with `mode`) or "delete" (`path` is removed; no staging).
struct source_change {
  std::string op;
  std::string path;
  std::string staging;  // absolute, under the project's .uploads folder
  uint32_t mode = 0644;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, source_change& x) {
  return f(caf::meta::type_name("source_change"), x.op, x.path, x.staging, x.mode);
}

// The tree after a change (or as last recorded).
struct source_view {
  std::string hash;   // 64 hex chars (runtime/workspace/tree_hash.hpp)
  uint64_t files = 0, bytes = 0;
  std::string via;    // what made it (upload, write, delete, seed, recovered)
  std::string path;   // write/delete: the file
  uint64_t seq = 0;   // of the source_updated event
  int64_t ts_us = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, source_view& x) {
  return f(caf::meta::type_name("source_view"), x.hash, x.files, x.bytes, x.via, x.path, x.seq, x.ts_us);
}

}  // namespace berth
