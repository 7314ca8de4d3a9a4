// Persisted events: what the log stores and what every state is folded from.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>
#include <nlohmann/json.hpp>

namespace berth {

// An event a caller wants appended; the log assigns seq, time and hashes.
struct new_event {
  std::string stream;  // e.g. "project/shop", "ports"; no '|' or '\n'
  std::string type;    // e.g. "project_created"
  std::string data;    // JSON text (an object)
};

// An event as stored: hash = SHA-256(prev_hash, seq, stream, type, ts_us, data).
struct event_record {
  uint64_t seq = 0;  // global, starts at 1, no gaps
  std::string stream;
  std::string type;
  int64_t ts_us = 0;  // microseconds since the Unix epoch (UTC)
  std::string data;   // JSON text
  std::string prev_hash;  // 64 hex chars; all '0' for seq 1
  std::string hash;       // 64 hex chars
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, new_event& x) {
  return f(caf::meta::type_name("new_event"), x.stream, x.type, x.data);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, event_record& x) {
  return f(caf::meta::type_name("event_record"), x.seq, x.stream, x.type, x.ts_us,
           x.data, x.prev_hash, x.hash);
}

// JSON form used by the API and `berth audit replay`: data is embedded as an object
// and the time is given both as ts_us and as ISO-8601 ("time").
nlohmann::json to_json(const event_record& e);
std::string iso8601(int64_t ts_us);
// Parses "2026-11-23T10:00:00Z" (optionally with .fraction and Z/+hh:mm); false if invalid.
bool parse_iso8601(const std::string& text, int64_t& ts_us);

// JSON text of `j`, for the log and for answers. Invalid UTF-8 in a string (a file name with
// byte 0xff, a git server's error) becomes U+FFFD instead of throwing.
std::string dump_json(const nlohmann::json& j, int indent = -1);

// True when `s` may be used as a stream name or event type.
bool valid_stream_name(const std::string& s);

// An event's data as a JSON object for the folds: {} when it is not an object, members the
// folds read with the wrong type dropped (a damaged or foreign log must not throw or overflow).
nlohmann::json payload_object(const std::string& data);

}  // namespace berth
