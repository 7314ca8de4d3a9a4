// Internal to upload_extract.cpp: what the names and link targets of an uploaded archive may be.
// Pure string work (no file system), so every rule can be read in one place.
#pragma once
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "runtime/status.hpp"

namespace berth::upload_detail {

constexpr size_t kMaxPath = 4096;
constexpr size_t kMaxComponent = 255;

// The components of an entry's name: leading "./" dropped, one trailing '/' dropped, so the
// archive's root entry ("." or "./") answers ok with no component. invalid_argument with the
// reason (without the name) for an absolute path, a ".." or "." or empty component, a path over
// kMaxPath bytes or a component over kMaxComponent.
status split_entry_path(const std::string& name, std::vector<std::string>* parts);

// The symlinks of one archive, to tell where each ends up. A link's target is resolved from its
// own folder component by component, the way the kernel would: ".." climbs, and a component that
// is a link recorded here is replaced by that link's target (so `s -> .` then `t -> s/..` is
// seen to leave the tree, which a purely lexical look at `t` alone would miss).
class link_table {
 public:
  // Records the link at `parts` pointing at `target` and checks it against the links recorded
  // so far. invalid_argument with the reason: empty, absolute, too long, or leaves the tree.
  status add(const std::vector<std::string>& parts, const std::string& target);
  // Once every entry is known (a later link can change where an earlier one leads): checks
  // every link again; the first that leaves the tree is named in `which`.
  status check_all(std::string* which) const;

 private:
  enum class walked { inside, escapes, loops };
  // Moves `at` (a folder's components) along `target`: escapes when it is absolute or climbs
  // above the root, loops when it follows more than 40 links (the kernel's own bound).
  walked walk(std::vector<std::string>* at, const std::string& target, int* hops) const;
  status check(const std::vector<std::string>& parts, const std::string& target) const;

  std::unordered_map<std::string, std::string> target_of_;  // link path ("a/b") -> target
  std::vector<std::pair<std::vector<std::string>, std::string>> order_;  // as added
};

// The components joined with '/'.
std::string join_path(const std::vector<std::string>& parts, size_t count);

}  // namespace berth::upload_detail
