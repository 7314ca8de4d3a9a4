// Changing a workspace's live tree (preview/src) while its preview runs in it: a whole new tree
// from an upload, one file written, one file removed. Each change is staged first under the
// project's uploads folder, then applied with renames (a running preview sees each file appear
// whole), with an intent file so a crash half-way is finished at the next start. Reading one
// file. No actor code; everything blocks. The owner of a tree (project:<name>) serialises its
// changes: functions here may run on any thread, but two changes of one tree must not overlap
// (workspace_lock below).
#pragma once
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/driver.hpp"
#include "runtime/status.hpp"

namespace berth {

// The lock every writer of a live tree and every deploy snapshot of it takes (one per tree
// path, for the life of the process). Thread-safe.
std::mutex& workspace_lock(const std::filesystem::path& live);

// A project's staging area: <project root>/.uploads/<id>/ (same filesystem as preview/src).
// `new_staging` makes a fresh one (0700) and answers its path. io_error.
status new_staging(const std::filesystem::path& uploads_dir, std::filesystem::path* out);

// Checks a path given by a client for one file of the tree: relative, generic ('/'), no "."
// or ".." or empty component, no NUL, at most 4096 bytes (255 per component), not inside a
// `.git` folder. invalid_argument with the reason.
status check_tree_path(const std::string& rel);

struct tree_change {
  enum class kind { replace_tree, write_file, delete_file };
  kind what = kind::replace_tree;
  std::string path;               // write_file, delete_file: the file (check_tree_path)
  std::filesystem::path staging;  // replace_tree: staging/tree holds the new tree (extract_upload);
                                  // write_file: staging/file holds the new bytes; delete_file: unused
  uint32_t mode = 0644;           // write_file: the new file's mode (& 0755)
};

// Applies `c` to `live` (the tree's root, which exists); the caller holds workspace_lock(live).
// Before the first change to `live` the intent is written durably to <staging>/APPLY (for
// replace_tree also the full list of the new tree's paths) and the staged data is made durable
// (one syncfs), so finish_pending() can complete it after a crash. The staging folder is removed
// whatever the outcome (a failed change is never re-applied later, over a newer one).
// replace_tree: every entry of the new tree replaces its namesake (a file or link by rename; a
// folder live lacks moves whole, one it has is merged into and takes the new folder's mode; a
// file where a folder was, or the reverse, or a link where a folder goes, replaces it), then
// entries of `live` not in the new tree are removed. `.git` folders in live are kept; an
// uploaded `.git` is dropped. Folders nested deeper than 256 are refused (invalid_argument).
// write_file: creates missing parent folders (0755), renames the new file (mode & 0755) into
// place; a parent that is a symlink or a file is invalid_argument (never followed, never
// replaced: the app's link stays), as is a folder where the file goes.
// delete_file: unlinks the file or link (a folder is invalid_argument; a missing file
// not_found); one unlink, so no staging and no intent (`c.staging` unused).
// Every step opens folders relative to their parent with O_NOFOLLOW: a folder the app replaced
// by a symlink is never followed (the link itself is replaced or the change fails).
// When `owner.uid` is non-zero, what the change moves in or creates is lchown'ed to it first.
// invalid_argument (a path, or the tree does not take the change), not_found, no_space,
// io_error (the disk; a failure after the first move says the tree may hold part of the change).
status apply_tree_change(const std::filesystem::path& live, const tree_change& c, const sandbox_identity& owner);

// After a restart: every staging folder under `uploads_dir` that holds a complete APPLY intent
// is applied to `live` (as apply_tree_change would have finished it, from wherever the crash
// left it) and its change returned in `finished` (in the order they were begun; as far as it
// got when it fails); one the tree no longer takes (invalid_argument, e.g. a parent the app has
// since made a link) is dropped with a warning. Every other staging folder whose mtime is
// before `older_than` (an interrupted upload) is removed; newer ones are left alone (uploads
// still running). Call with the tree's lock held. io_error / no_space.
status finish_pending(const std::filesystem::path& uploads_dir, const std::filesystem::path& live,
                      const sandbox_identity& owner, std::filesystem::file_time_type older_than,
                      std::vector<tree_change>* finished);

// At a restart, without the tree's lock: removes the interrupted uploads finish_pending would
// remove, and sets *begun when a change with a complete intent waits there (finish_pending
// completes it). Safe beside a finish_pending of the same folder: a staging folder is removed
// here only once its intent is gone, i.e. once that change is over. io_error.
status sweep_staging(const std::filesystem::path& uploads_dir, std::filesystem::file_time_type older_than,
                     bool* begun);

// Opens one regular file of the tree for reading (check_tree_path; folders opened with
// O_NOFOLLOW; the file itself O_NOFOLLOW): a file descriptor the caller closes, and its size.
// not_found (missing), invalid_argument (a folder, a link, a special file, a bad path).
status open_tree_file(const std::filesystem::path& live, const std::string& rel, int* fd, uint64_t* size);

}  // namespace berth
