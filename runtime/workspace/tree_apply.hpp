// The steps behind apply_tree_change and finish_pending (tree_change.hpp), shared by the two
// files that implement them. Internal: nothing outside runtime/workspace/ includes this.
// Every function works on already-open folder descriptors and opens what it needs relative to
// them with O_NOFOLLOW: a symlink the app planted in the live tree is never followed.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/driver.hpp"
#include "runtime/status.hpp"
#include "runtime/workspace/tree_change.hpp"

namespace berth::tree_detail {

namespace fs = std::filesystem;

// Folders nested deeper than this are refused (each level holds a descriptor while it is walked).
inline constexpr int max_depth = 256;

struct fd_guard {
  int fd = -1;
  explicit fd_guard(int f = -1) : fd(f) {}
  ~fd_guard();
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
  int release();
};

// Opens the folder `name` below `dir` (O_DIRECTORY|O_NOFOLLOW); -1 with errno on failure.
int open_dir_at(int dir, const char* name);

// Removes the entry `name` of `dir` whatever it is: a file or link is unlinked (a link itself,
// never its target), a folder emptied depth-first through descriptors and removed. Missing: ok.
status remove_entry_at(int dir, const std::string& name, const fs::path& shown, int depth = 0);

// What apply_tree_change promised to do, as written to <staging>/APPLY before the live tree is
// first touched. For replace_tree, `entries` is every (type, path) of the new tree ('d','f','l').
struct apply_intent {
  tree_change change;
  int64_t begun_ns = 0;  // wall clock: orders the intents finish_pending finds
  std::vector<std::pair<char, std::string>> entries;
};

// Writes the intent durably: a temp file fsync'd, renamed to APPLY, the staging folder fsync'd.
status write_intent(int staging_dir, const fs::path& staging, const apply_intent& intent);
// Reads <staging>/APPLY: not_found when there is none, corruption when it cannot be parsed.
status read_intent(const fs::path& staging, apply_intent* intent);

// Before the intent: lists the new tree below `tree_dir` (skipping `.git`), lchowns every
// entry to `owner` (uid != 0) and makes its data durable, so a rename into live needs no more.
status prepare_new_tree(int tree_dir, const fs::path& shown, const sandbox_identity& owner,
                        std::vector<std::pair<char, std::string>>* entries);

// The apply itself, from any point a crash may have left it at (idempotent): replace_tree
// moves what is left in staging/tree into live and removes what the new tree does not hold;
// write_file moves staging/file into place (done when it is gone); delete_file unlinks.
status run_apply(const fs::path& live, const fs::path& staging, const apply_intent& intent,
                 const sandbox_identity& owner);

// Opens the folders of `rel`'s parent one by one from `root` (O_NOFOLLOW). With `create`,
// missing ones are made (0755, lchowned to `owner`). *leaf is rel's last component.
// not_found (a folder missing, without create), invalid_argument (a component is a link or
// not a folder), io_error.
status open_parent(int root, const std::string& rel, bool create, const sandbox_identity& owner,
                   fd_guard* parent, std::string* leaf);

}  // namespace berth::tree_detail
