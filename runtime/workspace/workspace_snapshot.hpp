// A deploy's copy of a workspace (the live preview/src, which its preview and people or agents
// edit while the copy runs), made consistent. No actor code; blocks.
#pragma once
#include <filesystem>

#include "runtime/release/snapshot_record.hpp"
#include "runtime/status.hpp"
#include "runtime/workspace/tree_hash.hpp"

namespace berth {

inline constexpr int workspace_snapshot_rounds = 5;

// Copies the live tree `live` into `dest` (which must not exist; made next to it and renamed in
// at the end, as snapshot_source does, with the same rules: `.git` skipped, links kept as
// links and never followed, special files skipped, modes & 0777), then walks `live` again and
// compares every entry with what was copied (identity of files, targets of links, the set of
// paths). What changed, appeared or vanished meanwhile is copied again (or removed from the
// copy), and the comparison repeats, at most `rounds` passes in all. When a pass finds nothing
// changed the copy is exactly the tree as it was at that pass: ok, with `listing` (optional)
// the copy's listing and hash (hash_tree over dest, using `cache` and the record), and `record`
// (optional) what was copied from where (for packaging).
// The first pass is the copy itself. A file whose ctime was within a clock tick (20 ms) of its
// copy counts as changed (a second write in that tick would not show), so it is copied again
// in the next pass, which first waits for that tick to pass. Files are hashed while they are
// copied (unless `cache` knows them), so the listing reads nothing again; `cache` may be null.
// An absolute link target inside `live` is made relative (as snapshot_source does), so such a
// link's target, and the hash, differ from the live tree's.
// Still changing after `rounds` passes: `corruption` with a message starting "source_busy:"
// naming a path that kept changing; dest is then removed. Other failures as snapshot_source
// (a folder or file that turns into a link meanwhile is copied as the link, never followed).
status snapshot_workspace(const std::filesystem::path& live, const std::filesystem::path& dest,
                          tree_hash_cache* cache, snapshot_record* record, tree_listing* listing,
                          int rounds = workspace_snapshot_rounds);

// True when a status from snapshot_workspace means the tree kept changing.
bool is_source_busy(const status& s);

}  // namespace berth
