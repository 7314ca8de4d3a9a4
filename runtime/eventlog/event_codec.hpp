// Internal to runtime/eventlog/ (and fuzz/fuzz_event.cpp): how the event log lays out its
// keys and stored values, implemented in event_codec.cpp.
//
// Column families:
//   events   8-byte big-endian seq -> the record: a binary envelope (event_codec.cpp; written
//            since v2) or, for events written before it, a JSON object (data kept as JSON *text*)
//   streams  "<stream>|%020llu"    -> ""   (per-stream index, zero padding = numeric order)
//   meta     "head"                -> {"seq":N,"hash":"..","ts_us":T}
//            "replay_snapshot|%020llu" -> an encoded log_replay up to that seq (replay_snapshot.hpp)
#pragma once
#include <rocksdb/slice.h>

#include <cstdint>
#include <string>

#include "messages/event.hpp"

namespace berth::detail {

constexpr const char* kHeadKey = "head";
inline const std::string kZeroHash(64, '0');

// ---------------------------------------------------------------------------------------
// Keys

void put_be64(char* p, uint64_t v);
uint64_t get_be64(const char* p);

struct event_key {
  char buf[8];
  explicit event_key(uint64_t seq) { put_be64(buf, seq); }
  rocksdb::Slice slice() const { return {buf, 8}; }
};

// "<stream>|" followed by seq as 20 zero-padded decimal digits.
std::string stream_key(const std::string& stream, uint64_t seq);
// Parses the seq of a stream index key whose stream part has `stream_len` bytes.
bool parse_stream_key_seq(const rocksdb::Slice& k, size_t stream_len, uint64_t& seq);
// The smallest string greater than every string starting with `prefix` ("" when none).
std::string prefix_successor(std::string prefix);

// ---------------------------------------------------------------------------------------
// Stored values

// The binary envelope (what append() writes).
std::string encode_value(const event_record& r);
// The JSON object older berths wrote (kept for tests of old data dirs).
std::string encode_value_json(const event_record& r);
// Either form. Sets every field of `out` or fails, so one record can be reused across calls.
bool decode_value(const rocksdb::Slice& v, event_record& out);

struct head_info {
  uint64_t seq = 0;
  std::string hash = kZeroHash;
  int64_t ts_us = 0;
};

// Meta key of the replay snapshot at `seq`: kSnapshotPrefix + seq as 20 zero-padded digits.
constexpr const char* kSnapshotPrefix = "replay_snapshot|";
std::string snapshot_key(uint64_t seq);

std::string encode_head(const head_info& h);
bool decode_head(const std::string& v, head_info& h);

// What validate_event() requires of stream and type names besides valid_stream_name.
bool valid_utf8(const std::string& s);

}  // namespace berth::detail
