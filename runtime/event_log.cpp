// The append-only, hash-chained event log on RocksDB (see event_log.hpp).
//
// Column families:
//   events   8-byte big-endian seq -> the record as a JSON object (data kept as JSON *text*)
//   streams  "<stream>|%020llu"    -> ""   (per-stream index, zero padding = numeric order)
//   meta     "head"                -> {"seq":N,"hash":"..","ts_us":T}
// One append = one WriteBatch (events + index entries + head), so it is atomic.
#include "runtime/event_log.hpp"

#include <openssl/evp.h>
#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <system_error>

#include <nlohmann/json.hpp>

namespace berth {

namespace {

namespace fs = std::filesystem;

constexpr const char* kEventsCf = "events";
constexpr const char* kStreamsCf = "streams";
constexpr const char* kMetaCf = "meta";
constexpr const char* kHeadKey = "head";
const std::string kZeroHash(64, '0');

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

struct event_key {
  char buf[8];
  explicit event_key(uint64_t seq) { put_be64(buf, seq); }
  rocksdb::Slice slice() const { return {buf, 8}; }
};

// "<stream>|" followed by seq as 20 zero-padded decimal digits.
void append_padded(std::string& out, uint64_t v) {
  char digits[20];
  for (int i = 19; i >= 0; --i) {
    digits[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
  out.append(digits, 20);
}

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
// Stored value: JSON object written with ordered_json, read back with a SAX handler that
// fills an event_record in place (no DOM; reuses the record's string capacity on replay).

std::string encode_value(const event_record& r) {
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

bool decode_value(const rocksdb::Slice& v, event_record& out) {
  record_sax sax(out);
  const char* first = v.data();
  const char* last = v.data() + v.size();
  bool ok = nlohmann::json::sax_parse(first, last, &sax, nlohmann::json::input_format_t::json,
                                      /*strict=*/true);
  return ok && sax.complete();
}

// ---------------------------------------------------------------------------------------
// Hashing (OpenSSL 3 EVP; the digest is fetched once, contexts are reused per thread).

const EVP_MD* sha256_md() {
  static const EVP_MD* md = [] {
    const EVP_MD* m = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    return m != nullptr ? m : EVP_sha256();
  }();
  return md;
}

struct md_ctx {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~md_ctx() { EVP_MD_CTX_free(ctx); }
};

EVP_MD_CTX* thread_ctx() {
  thread_local md_ctx c;
  if (c.ctx == nullptr) throw std::bad_alloc();
  return c.ctx;
}

std::string to_hex(const unsigned char* d, unsigned n) {
  static const char* digits = "0123456789abcdef";
  std::string s(n * 2, '0');
  for (unsigned i = 0; i < n; ++i) {
    s[2 * i] = digits[d[i] >> 4];
    s[2 * i + 1] = digits[d[i] & 0xf];
  }
  return s;
}

void digest_update(EVP_MD_CTX* ctx, const void* p, size_t n) {
  if (n > 0 && EVP_DigestUpdate(ctx, p, n) != 1)
    throw std::runtime_error("EVP_DigestUpdate failed");
}

// Length-prefixed field: 8-byte big-endian length, then the bytes.
void digest_field(EVP_MD_CTX* ctx, const std::string& s) {
  char len[8];
  put_be64(len, s.size());
  digest_update(ctx, len, 8);
  digest_update(ctx, s.data(), s.size());
}

void digest_u64(EVP_MD_CTX* ctx, uint64_t v) {
  char b[8];
  put_be64(b, v);
  digest_update(ctx, b, 8);
}

// ---------------------------------------------------------------------------------------
// Validation helpers

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

status from_rocks(const rocksdb::Status& s, const std::string& what) {
  std::string m = what + ": " + s.ToString();
  if (s.IsNotFound()) return status::not_found(m);
  if (s.IsCorruption()) return status::corruption(m);
  if (s.IsInvalidArgument()) return status::invalid_argument(m);
  return status::io_error(m);
}

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct head_info {
  uint64_t seq = 0;
  std::string hash = kZeroHash;
  int64_t ts_us = 0;
};

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

// Holds a snapshot of a primary instance (nothing when db is null).
class snapshot_guard {
 public:
  explicit snapshot_guard(rocksdb::DB* db) : db_(db), snap_(db ? db->GetSnapshot() : nullptr) {}
  ~snapshot_guard() {
    if (snap_ != nullptr) db_->ReleaseSnapshot(snap_);
  }
  snapshot_guard(const snapshot_guard&) = delete;
  snapshot_guard& operator=(const snapshot_guard&) = delete;
  const rocksdb::Snapshot* get() const { return snap_; }

 private:
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snap_;
};

class rocks_event_log final : public event_log {
 public:
  rocks_event_log(rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*> handles,
                  bool read_only, std::string secondary_dir)
      : db_(db),
        handles_(std::move(handles)),
        read_only_(read_only),
        secondary_dir_(std::move(secondary_dir)) {
    events_ = handles_[1];
    streams_ = handles_[2];
    meta_ = handles_[3];
  }

  ~rocks_event_log() override {
    for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
    handles_.clear();
    db_->Close();
    delete db_;
    if (!secondary_dir_.empty()) {
      std::error_code ec;
      fs::remove_all(secondary_dir_, ec);
    }
  }

  // Loads the head from meta, or derives it from the last event when meta has none.
  status load_head() {
    std::string v;
    auto s = db_->Get(rocksdb::ReadOptions(), meta_, kHeadKey, &v);
    head_info h;
    if (s.ok()) {
      if (!decode_head(v, h)) return status::corruption("meta head does not parse: " + v);
    } else if (s.IsNotFound()) {
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), events_));
      it->SeekToLast();
      if (it->Valid()) {
        event_record r;
        if (!decode_value(it->value(), r))
          return status::corruption("last event does not parse");
        h.seq = r.seq;
        h.hash = r.hash;
        h.ts_us = r.ts_us;
      } else if (!it->status().ok()) {
        return from_rocks(it->status(), "reading last event");
      }
    } else {
      return from_rocks(s, "reading meta head");
    }
    head_ = std::move(h);
    last_seq_.store(head_.seq, std::memory_order_release);
    return status::ok();
  }

  status append(const std::vector<new_event>& events, bool sync,
                std::vector<event_record>* out) override {
    if (read_only_) return status::invalid_argument("event log is open read-only");
    for (size_t i = 0; i < events.size(); ++i) {
      auto st = validate_event(events[i]);
      if (!st) return status::invalid_argument("event " + std::to_string(i) + ": " + st.message());
    }
    std::vector<event_record> recs;
    if (events.empty()) {
      if (out != nullptr) out->clear();
      return status::ok();
    }
    recs.reserve(events.size());
    std::lock_guard<std::mutex> guard(mu_);
    head_info next = head_;
    next.ts_us = std::max(now_us(), head_.ts_us);
    rocksdb::WriteBatch batch;
    std::string skey;
    for (const auto& e : events) {
      event_record r;
      r.seq = ++next.seq;
      r.stream = e.stream;
      r.type = e.type;
      r.ts_us = next.ts_us;
      r.data = e.data;
      r.prev_hash = std::move(next.hash);
      r.hash = event_hash(r);
      next.hash = r.hash;
      event_key k(r.seq);
      auto value = encode_value(r);
      batch.Put(events_, k.slice(), value);
      skey = stream_key(r.stream, r.seq);
      batch.Put(streams_, skey, rocksdb::Slice());
      recs.push_back(std::move(r));
    }
    batch.Put(meta_, kHeadKey, encode_head(next));
    rocksdb::WriteOptions wo;
    wo.sync = sync;
    auto s = db_->Write(wo, &batch);
    if (!s.ok()) return from_rocks(s, "writing events");
    head_ = std::move(next);
    last_seq_.store(head_.seq, std::memory_order_release);
    if (out != nullptr) *out = std::move(recs);
    return status::ok();
  }

  status read_stream(const std::string& stream, uint64_t from, uint64_t limit,
                     std::vector<event_record>* out) const override {
    out->clear();
    if (!valid_stream_name(stream)) return status::invalid_argument("invalid stream name");
    if (limit == 0) limit = std::numeric_limits<uint64_t>::max();
    // 1. Collect seqs from the stream index.
    std::string upper = stream;
    upper.push_back('|' + 1);
    rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper_slice;
    std::vector<uint64_t> seqs;
    {
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, streams_));
      for (it->Seek(stream_key(stream, std::max<uint64_t>(from, 1)));
           it->Valid() && seqs.size() < limit; it->Next()) {
        uint64_t seq;
        if (!parse_stream_key_seq(it->key(), stream.size(), seq))
          return status::corruption("malformed stream index key in " + stream);
        seqs.push_back(seq);
      }
      if (!it->status().ok()) return from_rocks(it->status(), "reading stream index");
    }
    // 2. Fetch the events in sorted batches.
    out->reserve(seqs.size());
    rocksdb::ReadOptions get_ro;
    constexpr size_t kBatch = 256;
    std::vector<char> keybuf(kBatch * 8);
    std::vector<rocksdb::Slice> keys(kBatch);
    std::vector<rocksdb::PinnableSlice> values(kBatch);
    std::vector<rocksdb::Status> statuses(kBatch);
    for (size_t base = 0; base < seqs.size(); base += kBatch) {
      size_t n = std::min(kBatch, seqs.size() - base);
      for (size_t i = 0; i < n; ++i) {
        put_be64(&keybuf[i * 8], seqs[base + i]);
        keys[i] = rocksdb::Slice(&keybuf[i * 8], 8);
        values[i].Reset();
      }
      db_->MultiGet(get_ro, events_, n, keys.data(), values.data(), statuses.data(),
                    /*sorted_input=*/true);
      for (size_t i = 0; i < n; ++i) {
        uint64_t seq = seqs[base + i];
        if (statuses[i].IsNotFound())
          return status::corruption("stream index of " + stream + " points to missing event " +
                                    std::to_string(seq));
        if (!statuses[i].ok()) return from_rocks(statuses[i], "reading event");
        out->emplace_back();
        if (!decode_value(values[i], out->back()) || out->back().seq != seq) {
          out->pop_back();
          return status::corruption("event " + std::to_string(seq) + " does not parse");
        }
      }
    }
    return status::ok();
  }

  status last_of_stream(const std::string& stream, event_record* out) const override {
    if (!valid_stream_name(stream)) return status::invalid_argument("invalid stream name");
    std::string lower = stream + '|';
    std::string upper = stream + static_cast<char>('|' + 1);
    rocksdb::Slice lower_slice(lower), upper_slice(upper);
    rocksdb::ReadOptions ro;
    ro.iterate_lower_bound = &lower_slice;
    ro.iterate_upper_bound = &upper_slice;
    uint64_t seq = 0;
    {
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, streams_));
      it->SeekToLast();
      if (!it->Valid()) {
        if (!it->status().ok()) return from_rocks(it->status(), "reading stream index");
        return status::not_found("stream " + stream + " is empty");
      }
      if (!parse_stream_key_seq(it->key(), stream.size(), seq))
        return status::corruption("malformed stream index key in " + stream);
    }
    rocksdb::PinnableSlice value;
    event_key k(seq);
    auto s = db_->Get(rocksdb::ReadOptions(), events_, k.slice(), &value);
    if (s.IsNotFound())
      return status::corruption("stream index of " + stream + " points to missing event " +
                                std::to_string(seq));
    if (!s.ok()) return from_rocks(s, "reading event");
    if (!decode_value(value, *out) || out->seq != seq)
      return status::corruption("event " + std::to_string(seq) + " does not parse");
    return status::ok();
  }

  status scan(uint64_t from, const std::function<bool(const event_record&)>& fn) const override {
    rocksdb::ReadOptions ro;
    ro.fill_cache = false;           // a replay must not evict the hot set
    ro.readahead_size = 2 << 20;     // sequential read of the whole CF
    ro.async_io = false;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, events_));
    event_record r;  // reused: string capacity survives across records
    for (it->Seek(event_key(std::max<uint64_t>(from, 1)).slice()); it->Valid(); it->Next()) {
      auto k = it->key();
      if (k.size() != 8) return status::corruption("malformed event key");
      uint64_t seq = get_be64(k.data());
      if (!decode_value(it->value(), r))
        return status::corruption("event " + std::to_string(seq) + " does not parse");
      if (r.seq != seq)
        return status::corruption("event key " + std::to_string(seq) + " holds seq " +
                                  std::to_string(r.seq));
      if (!fn(r)) return status::ok();
    }
    if (!it->status().ok()) return from_rocks(it->status(), "scanning events");
    return status::ok();
  }

  std::vector<std::string> streams(const std::string& prefix) const override {
    std::vector<std::string> names;
    if (prefix.find('|') != std::string::npos) return names;
    std::string upper = prefix_successor(prefix);
    rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions ro;
    if (!upper.empty()) ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, streams_));
    std::string next;
    for (it->Seek(prefix); it->Valid();) {
      auto k = it->key();
      const char* bar = static_cast<const char*>(std::memchr(k.data(), '|', k.size()));
      if (bar == nullptr) {  // malformed key: skip it
        it->Next();
        continue;
      }
      names.emplace_back(k.data(), static_cast<size_t>(bar - k.data()));
      // Jump past every "<name>|..." key: '}' is the byte right after '|'.
      next = names.back();
      next.push_back('|' + 1);
      it->Seek(next);
    }
    // Key order puts "web2|…" before "web|…"; callers want plain name order.
    std::sort(names.begin(), names.end());
    return names;
  }

  uint64_t last_seq() const override { return last_seq_.load(std::memory_order_acquire); }

  verify_result verify() const override {
    verify_result res;
    auto fail = [&res](uint64_t seq, std::string why) {
      res.ok = false;
      res.first_bad = seq;
      res.reason = std::move(why);
      return res;
    };
    // One consistent view while appends may continue (primary only: a secondary instance
    // does not support snapshots, and it does not change after open anyway).
    snapshot_guard snap(read_only_ ? nullptr : db_);
    rocksdb::ReadOptions point;
    point.snapshot = snap.get();
    rocksdb::ReadOptions ro = point;
    ro.fill_cache = false;
    ro.readahead_size = 2 << 20;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, events_));
    uint64_t expected = 1;
    std::string prev_hash = kZeroHash;
    int64_t prev_ts = std::numeric_limits<int64_t>::min();
    event_record r;
    std::string skey;
    rocksdb::PinnableSlice index_value;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      auto k = it->key();
      if (k.size() != 8)
        return fail(expected, "malformed event key (" + std::to_string(k.size()) + " bytes)");
      uint64_t seq = get_be64(k.data());
      if (seq != expected)
        return fail(expected, seq > expected
                                  ? "event " + std::to_string(expected) +
                                        " is missing (next stored event is " +
                                        std::to_string(seq) + ")"
                                  : "unexpected event key " + std::to_string(seq));
      // decode_value sets every field or fails, so `r` can be reused across events.
      if (!decode_value(it->value(), r)) return fail(seq, "stored value does not parse");
      if (r.seq != seq)
        return fail(seq, "value carries seq " + std::to_string(r.seq));
      if (r.prev_hash != prev_hash) return fail(seq, "prev_hash does not match the previous hash");
      if (r.hash != event_hash(r)) return fail(seq, "hash does not match the event's content");
      if (!valid_stream_name(r.stream) || !valid_stream_name(r.type))
        return fail(seq, "invalid stream or type name");
      if (r.ts_us < prev_ts) return fail(seq, "timestamp goes backwards");
      skey = stream_key(r.stream, seq);
      index_value.Reset();
      auto s = db_->Get(point, streams_, skey, &index_value);
      if (s.IsNotFound()) return fail(seq, "stream index entry is missing");
      if (!s.ok()) return fail(seq, "reading stream index: " + s.ToString());
      prev_hash = r.hash;
      prev_ts = r.ts_us;
      ++res.checked;
      ++expected;
    }
    if (!it->status().ok()) return fail(expected, "reading events: " + it->status().ToString());
    // The head in meta must point at the last event.
    uint64_t last = expected - 1;
    std::string v;
    auto s = db_->Get(point, meta_, kHeadKey, &v);
    if (s.ok()) {
      head_info h;
      if (!decode_head(v, h)) return fail(last + 1, "meta head does not parse");
      if (h.seq > last)
        return fail(last + 1, "event " + std::to_string(last + 1) + " is missing (head is " +
                                  std::to_string(h.seq) + ")");
      if (h.seq < last) return fail(h.seq + 1, "meta head is behind the last event");
      if (h.hash != prev_hash) return fail(last, "meta head hash does not match the last event");
    } else if (!s.IsNotFound() || last > 0) {
      return fail(last + 1, "meta head is missing: " + s.ToString());
    }
    return res;
  }

 private:
  rocksdb::DB* db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  rocksdb::ColumnFamilyHandle* events_ = nullptr;
  rocksdb::ColumnFamilyHandle* streams_ = nullptr;
  rocksdb::ColumnFamilyHandle* meta_ = nullptr;
  bool read_only_;
  std::string secondary_dir_;

  std::mutex mu_;  // guards head_ (seq, hash and time assignment)
  head_info head_;
  std::atomic<uint64_t> last_seq_{0};
};

std::vector<rocksdb::ColumnFamilyDescriptor> cf_descriptors() {
  rocksdb::ColumnFamilyOptions events_opts;
  rocksdb::BlockBasedTableOptions tbl;
  tbl.block_size = 16 * 1024;  // larger blocks: replay is sequential
  events_opts.table_factory.reset(rocksdb::NewBlockBasedTableFactory(tbl));
  return {
      {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()},
      {kEventsCf, events_opts},
      {kStreamsCf, rocksdb::ColumnFamilyOptions()},
      {kMetaCf, rocksdb::ColumnFamilyOptions()},
  };
}

}  // namespace

status validate_event(const new_event& e) {
  if (!valid_stream_name(e.stream) || !valid_utf8(e.stream))
    return status::invalid_argument("invalid stream name");
  if (!valid_stream_name(e.type) || !valid_utf8(e.type))
    return status::invalid_argument("invalid event type");
  if (!e.data.empty() && !nlohmann::json::accept(e.data))
    return status::invalid_argument("data is not valid JSON");
  return status::ok();
}

std::string sha256_hex(const std::string& bytes) {
  auto* ctx = thread_ctx();
  if (EVP_DigestInit_ex(ctx, sha256_md(), nullptr) != 1)
    throw std::runtime_error("EVP_DigestInit_ex failed");
  digest_update(ctx, bytes.data(), bytes.size());
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  if (EVP_DigestFinal_ex(ctx, md, &n) != 1) throw std::runtime_error("EVP_DigestFinal_ex failed");
  return to_hex(md, n);
}

// Encoding: "berth-event-v1", then prev_hash, seq, stream, type, ts_us, data, where every
// string is length-prefixed (8-byte big-endian) and integers are 8-byte big-endian.
std::string event_hash(const event_record& e) {
  static const std::string domain = "berth-event-v1";
  auto* ctx = thread_ctx();
  if (EVP_DigestInit_ex(ctx, sha256_md(), nullptr) != 1)
    throw std::runtime_error("EVP_DigestInit_ex failed");
  digest_field(ctx, domain);
  digest_field(ctx, e.prev_hash);
  digest_u64(ctx, e.seq);
  digest_field(ctx, e.stream);
  digest_field(ctx, e.type);
  digest_u64(ctx, static_cast<uint64_t>(e.ts_us));
  digest_field(ctx, e.data);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  if (EVP_DigestFinal_ex(ctx, md, &n) != 1) throw std::runtime_error("EVP_DigestFinal_ex failed");
  return to_hex(md, n);
}

status event_log::open(const std::string& dir, mode m, std::unique_ptr<event_log>* out) {
  auto cfs = cf_descriptors();
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  std::string secondary;
  if (m == mode::read_write) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return status::io_error("cannot create " + dir + ": " + ec.message());
    rocksdb::DBOptions opts;
    opts.create_if_missing = true;
    opts.create_missing_column_families = true;
    opts.max_background_jobs = 2;
    // Table files are opened on one thread: the default spawns 16 short-lived threads per
    // column family on every open (about 40 ms here) for a handful of files.
    opts.max_file_opening_threads = 1;
    auto s = rocksdb::DB::Open(opts, dir, cfs, &handles, &db);
    if (!s.ok()) return from_rocks(s, "opening " + dir);
  } else {
    struct stat st;
    if (::stat((dir + "/CURRENT").c_str(), &st) != 0)
      return status::not_found("no event log at " + dir);
    char tmpl[] = "/tmp/berth-secondary-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr)
      return status::io_error("mkdtemp for the secondary instance failed");
    secondary = tmpl;
    rocksdb::DBOptions opts;
    opts.create_if_missing = false;
    opts.max_open_files = -1;  // required for secondary instances
    opts.max_file_opening_threads = 1;
    auto s = rocksdb::DB::OpenAsSecondary(opts, dir, secondary, cfs, &handles, &db);
    if (s.ok()) s = db->TryCatchUpWithPrimary();
    if (!s.ok()) {
      if (db != nullptr) {
        for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
        delete db;
      }
      std::error_code ec;
      fs::remove_all(secondary, ec);
      return from_rocks(s, "opening " + dir + " read-only");
    }
  }
  std::unique_ptr<rocks_event_log> log(
      new rocks_event_log(db, std::move(handles), m == mode::read_only, std::move(secondary)));
  auto st = log->load_head();
  if (!st) return st;
  *out = std::move(log);
  return status::ok();
}

}  // namespace berth
