// project:<name>'s workspace tree (preview/src of a `source.workspace` project): the changes
// the HTTP edge staged are applied here, one at a time, each recorded as a source_updated event
// with the tree's hash (runtime/workspace/tree_change.hpp does the file work, on a worker).
#pragma once
#include <functional>
#include <string>

#include <caf/all.hpp>

#include "actors/project.hpp"
#include "messages/source.hpp"

namespace berth {

// At berth's start, for one project's uploads folder (mailbox of the projects supervisor held):
// removes the uploads a crash cut short; true when a change a crash interrupted half-way is
// waiting there (the project must then wake, and recover_source finishes and records it).
bool sweep_uploads(const project_paths& paths);

// Applies a staged change (upload, write, delete) and answers the tree as recorded.
// conflict: not a workspace project; invalid_request: a bad path or a folder; not_found: the
// file to delete is missing; storage_error / insufficient_storage: the disk (what a change
// stopped half-way left in the tree is then recorded, via "partial"). The staging folder is
// gone afterwards either way.
caf::result<source_view> change_source(caf::stateful_actor<project_actor_state>* self, source_change c);

// At start, before anything else (the mailbox is held): finishes the changes a crash
// interrupted, removes uploads a crash cut short, and records the tree once if anything was
// finished. `then` gets "" or why it could not (the project then cannot start).
void recover_source(caf::stateful_actor<project_actor_state>* self, std::function<void(const std::string&)> then);

}  // namespace berth
