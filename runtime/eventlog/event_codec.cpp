// The event log's keys and stored values (layout in event_codec.hpp), and validate_event:
// what may be stored. Pure functions, no database.
#include "runtime/eventlog/event_codec.hpp"

#include <cstddef>
#include <limits>

#include <nlohmann/json.hpp>

#include "runtime/eventlog/event_log.hpp"

namespace berth {

namespace detail {

// ---------------------------------------------------------------------------------------
// Keys

void put_be64(char* p, uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    p[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
}

uint64_t get_be64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

namespace {

// "<stream>|" followed by seq as 20 zero-padded decimal digits.
void append_padded(std::string& out, uint64_t v) {
  char digits[20];
  for (int i = 19; i >= 0; --i) {
    digits[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
  out.append(digits, 20);
}

}  // namespace

std::string stream_key(const std::string& stream, uint64_t seq) {
  std::string k;
  k.reserve(stream.size() + 21);
  k.append(stream);
  k.push_back('|');
  append_padded(k, seq);
  return k;
}

// Parses the seq of a stream index key whose stream part has `stream_len` bytes.
bool parse_stream_key_seq(const rocksdb::Slice& k, size_t stream_len, uint64_t& seq) {
  if (k.size() != stream_len + 21 || k[stream_len] != '|') return false;
  uint64_t v = 0;
  for (size_t i = stream_len + 1; i < k.size(); ++i) {
    char c = k[i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  seq = v;
  return true;
}

std::string snapshot_key(uint64_t seq) {
  std::string k = kSnapshotPrefix;
  append_padded(k, seq);
  return k;
}

// The smallest string greater than every string starting with `prefix` ("" when none).
std::string prefix_successor(std::string prefix) {
  while (!prefix.empty()) {
    auto& c = reinterpret_cast<unsigned char&>(prefix.back());
    if (c != 0xff) {
      ++c;
      return prefix;
    }
    prefix.pop_back();
  }
  return prefix;
}

// ---------------------------------------------------------------------------------------
// Stored value, binary envelope (written since v2): nothing in it is parsed as text, so a
// replay costs a few copies per event.
//
//   byte 0   kEnvelopeV1 (0x02; a JSON value starts with '{', so the two never mix)
//   byte 1   flags: bit 0 = both hashes are 64 lowercase hex chars, stored as 32 raw bytes
//   8 bytes  seq (big-endian)     8 bytes  ts_us (big-endian, two's complement)
//   varint length + bytes, for: stream, type, data
//   hashes   prev_hash then hash: 32 raw bytes each (flag set), or varint length + bytes
// The value must end right after the last field.

namespace {

constexpr char kEnvelopeV1 = 0x02;
constexpr unsigned char kRawHashes = 0x01;

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

bool get_varint(const char*& p, const char* end, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64 && p < end; shift += 7) {
    auto b = static_cast<unsigned char>(*p++);
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

void put_bytes(std::string& out, const std::string& s) {
  put_varint(out, s.size());
  out.append(s);
}

bool get_bytes(const char*& p, const char* end, std::string& out) {
  uint64_t n;
  if (!get_varint(p, end, n) || n > static_cast<uint64_t>(end - p)) return false;
  out.assign(p, n);
  p += n;
  return true;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

bool is_hex_hash(const std::string& h) {
  if (h.size() != 64) return false;
  for (char c : h)
    if (hex_value(c) < 0) return false;
  return true;
}

void put_raw_hash(std::string& out, const std::string& h) {
  for (size_t i = 0; i < 64; i += 2)
    out.push_back(static_cast<char>(hex_value(h[i]) << 4 | hex_value(h[i + 1])));
}

void get_raw_hash(const char* p, std::string& out) {
  static const char* digits = "0123456789abcdef";
  out.resize(64);
  for (size_t i = 0; i < 32; ++i) {
    auto b = static_cast<unsigned char>(p[i]);
    out[2 * i] = digits[b >> 4];
    out[2 * i + 1] = digits[b & 0xf];
  }
}

bool decode_envelope(const char* p, const char* end, event_record& out) {
  if (end - p < 18) return false;
  auto flags = static_cast<unsigned char>(p[1]);
  if ((flags & ~kRawHashes) != 0) return false;
  out.seq = get_be64(p + 2);
  out.ts_us = static_cast<int64_t>(get_be64(p + 10));
  p += 18;
  if (!get_bytes(p, end, out.stream) || !get_bytes(p, end, out.type) || !get_bytes(p, end, out.data))
    return false;
  if (flags & kRawHashes) {
    if (end - p != 64) return false;
    get_raw_hash(p, out.prev_hash);
    get_raw_hash(p + 32, out.hash);
    return true;
  }
  return get_bytes(p, end, out.prev_hash) && get_bytes(p, end, out.hash) && p == end;
}

}  // namespace

std::string encode_value(const event_record& r) {
  bool raw = is_hex_hash(r.prev_hash) && is_hex_hash(r.hash);
  std::string v;
  v.reserve(18 + r.stream.size() + r.type.size() + r.data.size() + 64 + 16);
  v.push_back(kEnvelopeV1);
  v.push_back(static_cast<char>(raw ? kRawHashes : 0));
  char b[8];
  put_be64(b, r.seq);
  v.append(b, 8);
  put_be64(b, static_cast<uint64_t>(r.ts_us));
  v.append(b, 8);
  put_bytes(v, r.stream);
  put_bytes(v, r.type);
  put_bytes(v, r.data);
  if (raw) {
    put_raw_hash(v, r.prev_hash);
    put_raw_hash(v, r.hash);
  } else {
    put_bytes(v, r.prev_hash);
    put_bytes(v, r.hash);
  }
  return v;
}

// ---------------------------------------------------------------------------------------
// Stored value as older berths wrote it: JSON object written with ordered_json, read back
// with a SAX handler that fills an event_record in place (no DOM).

std::string encode_value_json(const event_record& r) {
  nlohmann::ordered_json j;
  j["seq"] = r.seq;
  j["stream"] = r.stream;
  j["type"] = r.type;
  j["ts_us"] = r.ts_us;
  j["data"] = r.data;
  j["prev_hash"] = r.prev_hash;
  j["hash"] = r.hash;
  return j.dump();
}

namespace {

class record_sax {
 public:
  using json = nlohmann::json;
  using number_integer_t = json::number_integer_t;
  using number_unsigned_t = json::number_unsigned_t;
  using number_float_t = json::number_float_t;
  using string_t = json::string_t;
  using binary_t = json::binary_t;

  explicit record_sax(event_record& out) : out_(out) {}

  bool complete() const { return seen_ == kAll; }

  bool null() { return false; }
  bool boolean(bool) { return false; }
  bool number_float(number_float_t, const string_t&) { return false; }
  bool binary(binary_t&) { return false; }
  bool start_array(std::size_t) { return false; }
  bool end_array() { return false; }

  bool number_unsigned(number_unsigned_t v) {
    if (depth_ != 1) return false;
    switch (field_) {
      case f_seq:
        out_.seq = v;
        return mark(f_seq);
      case f_ts:
        if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
        out_.ts_us = static_cast<int64_t>(v);
        return mark(f_ts);
      default:
        return false;
    }
  }

  bool number_integer(number_integer_t v) {
    if (depth_ != 1 || field_ != f_ts) return false;
    out_.ts_us = v;
    return mark(f_ts);
  }

  bool string(string_t& v) {
    if (depth_ != 1) return false;
    switch (field_) {
      case f_stream: out_.stream.assign(v); break;
      case f_type: out_.type.assign(v); break;
      case f_data: out_.data.assign(v); break;
      case f_prev: out_.prev_hash.assign(v); break;
      case f_hash: out_.hash.assign(v); break;
      default: return false;
    }
    return mark(field_);
  }

  bool start_object(std::size_t) { return ++depth_ == 1; }
  bool end_object() {
    --depth_;
    return true;
  }

  bool key(string_t& k) {
    if (k == "seq") field_ = f_seq;
    else if (k == "stream") field_ = f_stream;
    else if (k == "type") field_ = f_type;
    else if (k == "ts_us") field_ = f_ts;
    else if (k == "data") field_ = f_data;
    else if (k == "prev_hash") field_ = f_prev;
    else if (k == "hash") field_ = f_hash;
    else return false;  // unknown field
    return (seen_ & field_) == 0;  // duplicate field
  }

  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) {
    return false;
  }

 private:
  enum field : unsigned {
    f_none = 0,
    f_seq = 1,
    f_stream = 2,
    f_type = 4,
    f_ts = 8,
    f_data = 16,
    f_prev = 32,
    f_hash = 64,
  };
  static constexpr unsigned kAll = 127;

  bool mark(unsigned f) {
    seen_ |= f;
    field_ = f_none;
    return true;
  }

  event_record& out_;
  int depth_ = 0;
  unsigned field_ = f_none;
  unsigned seen_ = 0;
};

}  // namespace

bool decode_value(const rocksdb::Slice& v, event_record& out) {
  if (v.empty()) return false;
  if (v[0] == kEnvelopeV1) return decode_envelope(v.data(), v.data() + v.size(), out);
  record_sax sax(out);
  const char* first = v.data();
  const char* last = v.data() + v.size();
  bool ok = nlohmann::json::sax_parse(first, last, &sax, nlohmann::json::input_format_t::json,
                                      /*strict=*/true);
  return ok && sax.complete();
}

std::string encode_head(const head_info& h) {
  nlohmann::ordered_json j;
  j["seq"] = h.seq;
  j["hash"] = h.hash;
  j["ts_us"] = h.ts_us;
  return j.dump();
}

bool decode_head(const std::string& v, head_info& h) {
  auto j = nlohmann::json::parse(v, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return false;
  auto s = j.find("seq");
  auto hs = j.find("hash");
  if (s == j.end() || !s->is_number_unsigned() || hs == j.end() || !hs->is_string())
    return false;
  h.seq = s->get<uint64_t>();
  h.hash = hs->get<std::string>();
  auto t = j.find("ts_us");
  h.ts_us = (t != j.end() && t->is_number_integer()) ? t->get<int64_t>() : 0;
  return true;
}

// ---------------------------------------------------------------------------------------
// Validation

bool valid_utf8(const std::string& s) {
  size_t i = 0, n = s.size();
  while (i < n) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if ((c & 0xe0) == 0xc0) len = 2, cp = c & 0x1f;
    else if ((c & 0xf0) == 0xe0) len = 3, cp = c & 0x0f;
    else if ((c & 0xf8) == 0xf0) len = 4, cp = c & 0x07;
    else return false;
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += len;
  }
  return true;
}

}  // namespace detail

status validate_event(const new_event& e) {
  if (!valid_stream_name(e.stream) || !detail::valid_utf8(e.stream))
    return status::invalid_argument("invalid stream name");
  if (!valid_stream_name(e.type) || !detail::valid_utf8(e.type))
    return status::invalid_argument("invalid event type");
  if (!e.data.empty() && !nlohmann::json::accept(e.data))
    return status::invalid_argument("data is not valid JSON");
  return status::ok();
}

}  // namespace berth
