// Event decoding: the bytes RocksDB hands back are decoded by runtime/eventlog/event_codec.cpp
// before their hash is checked (read_stream, scan, `berth audit verify|replay`). A damaged or
// foreign log must give "does not parse" or a hash mismatch, never undefined behaviour.
//
// Input: one stored value (the events column family's JSON object). The same bytes are also
// tried as the meta head, a stream index key and an event's stream name. The decoders are
// internal (berth::detail, runtime/eventlog/event_codec.hpp) and called directly.
#include <cstddef>
#include <cstdint>

#include <nlohmann/json.hpp>

#include "fuzz/fuzz_check.hpp"
#include "runtime/eventlog/event_codec.hpp"
#include "runtime/eventlog/event_log.hpp"

namespace {

using berth::event_record;
using json = nlohmann::json;

bool same(const event_record& a, const event_record& b) {
  return a.seq == b.seq && a.stream == b.stream && a.type == b.type && a.ts_us == b.ts_us &&
         a.data == b.data && a.prev_hash == b.prev_hash && a.hash == b.hash;
}

// nlohmann's own answer: dump() refuses invalid UTF-8 (what encode_value() would hit).
bool nlohmann_utf8(const std::string& s) {
  try {
    json(s).dump();
    return true;
  } catch (const json::type_error&) {
    return false;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);

  // As a stored event value, decoded into a fresh record and into a used one (verify() and
  // scan() reuse one record for the whole log).
  event_record r;
  bool ok = berth::detail::decode_value(rocksdb::Slice(bytes), r);
  event_record reused;
  reused.seq = 99;
  reused.stream = "project/previous";
  reused.type = "deployment_failed";
  reused.ts_us = -5;
  reused.data = R"({"id":"previous.1"})";
  reused.prev_hash = std::string(64, 'a');
  reused.hash = std::string(64, 'b');
  FUZZ_CHECK(berth::detail::decode_value(rocksdb::Slice(bytes), reused) == ok);
  if (ok) {
    FUZZ_CHECK(same(r, reused));
    // What append() writes for this record decodes to the same record.
    auto encoded = berth::detail::encode_value(r);
    event_record back;
    FUZZ_CHECK(berth::detail::decode_value(rocksdb::Slice(encoded), back));
    FUZZ_CHECK(same(r, back));
    // The checks verify() runs on it, and the API's JSON form.
    auto h = berth::event_hash(r);
    FUZZ_CHECK(h.size() == 64);
    if (r.hash == h) FUZZ_CHECK(berth::event_hash(back) == h);
    berth::validate_event({r.stream, r.type, r.data});
    berth::to_json(r).dump(-1, ' ', false, json::error_handler_t::replace);
  }

  // As the meta head.
  berth::detail::head_info head;
  if (berth::detail::decode_head(bytes, head)) {
    berth::detail::head_info back;
    FUZZ_CHECK(berth::detail::decode_head(berth::detail::encode_head(head), back));
    FUZZ_CHECK(back.seq == head.seq && back.hash == head.hash && back.ts_us == head.ts_us);
  }

  // As a stream index key "<stream>|<20 digits>".
  auto bar = bytes.rfind('|');
  uint64_t seq = 0;
  if (bar != std::string::npos &&
      berth::detail::parse_stream_key_seq(rocksdb::Slice(bytes), bar, seq) &&
      bytes.compare(bar + 1, 20, "18446744073709551615") <= 0)  // no wrap below UINT64_MAX
    FUZZ_CHECK(berth::detail::stream_key(bytes.substr(0, bar), seq) == bytes);
  auto succ = berth::detail::prefix_successor(bytes);
  if (!succ.empty()) FUZZ_CHECK(succ > bytes && succ.compare(0, bytes.size(), bytes) != 0);

  // As a stream name or event type handed to append(): what validate_event() lets through
  // must be encodable, i.e. valid UTF-8 by nlohmann's rules too.
  FUZZ_CHECK(berth::detail::valid_utf8(bytes) == nlohmann_utf8(bytes));
  if (berth::validate_event({bytes, "port_leased", "{}"}).is_ok()) {
    event_record e;
    e.seq = 1;
    e.stream = bytes;
    e.type = "port_leased";
    e.data = "{}";
    event_record back;
    FUZZ_CHECK(berth::detail::decode_value(rocksdb::Slice(berth::detail::encode_value(e)), back));
    FUZZ_CHECK(back.stream == bytes);
  }
  return 0;
}
