// What someone who can write the data dir can do to the event log, for the audit-anchoring
// tests: rewrite events and recompute the whole hash chain after them, or cut the tail off.
// Both open the RocksDB directory directly, so no server (nor other writer) may have it open.
// They fail the running Catch test on any error.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "messages/event.hpp"

namespace berth::test {

// Applies `change` to event `seq`, then recomputes prev_hash and hash of it and of every later
// event, and the stored head: `berth audit verify`'s chain check passes afterwards.
void rewrite_log_from(const std::string& events_dir, uint64_t seq, const std::function<void(event_record&)>& change);

// Deletes every event with seq >= `from` (and its stream index entry) and makes the one before
// the head: a consistent, shorter log.
void truncate_log_from(const std::string& events_dir, uint64_t from);

// Overwrites the stored value of event `seq` with bytes that do not decode: what a damaged disk
// or a careless hand leaves. Reading that event's stream fails afterwards.
void corrupt_event(const std::string& events_dir, uint64_t seq);

}  // namespace berth::test
