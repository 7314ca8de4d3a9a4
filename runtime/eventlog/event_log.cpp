// The append-only, hash-chained event log on RocksDB (see event_log.hpp): opening it and
// appending to it. Keys and values: event_codec.hpp; reads and verify(): event_log_read.cpp.
// One append = one WriteBatch (events + index entries + head), so it is atomic.
#include "runtime/eventlog/event_log.hpp"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <system_error>

#include "runtime/eventlog/rocks_event_log.hpp"
#include "runtime/files/disk_guard.hpp"

namespace berth {

namespace {

namespace fs = std::filesystem;

constexpr const char* kEventsCf = "events";
constexpr const char* kStreamsCf = "streams";
constexpr const char* kMetaCf = "meta";

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Memory: the daemon keeps its whole RocksDB footprint to a few MB (10,000 idle projects must
// fit in 64 MB RSS). One small block cache shared by every column family holds the data
// blocks and the table readers' index and filter blocks (so they do not grow with the number
// of table files); memtables are small (a flush every few thousand events costs nothing
// measurable; replay reads table files sequentially and bypasses the cache).
constexpr size_t kBlockCacheBytes = 4 << 20;
constexpr size_t kEventsWriteBuffer = 4 << 20;
constexpr size_t kIndexWriteBuffer = 2 << 20;
constexpr size_t kSmallWriteBuffer = 1 << 20;  // meta (head, replay snapshots) and default

rocksdb::ColumnFamilyOptions cf_options(const std::shared_ptr<rocksdb::Cache>& cache, size_t write_buffer,
                                        size_t block_size) {
  rocksdb::ColumnFamilyOptions o;
  rocksdb::BlockBasedTableOptions tbl;
  tbl.block_cache = cache;
  tbl.block_size = block_size;
  tbl.cache_index_and_filter_blocks = true;
  tbl.pin_l0_filter_and_index_blocks_in_cache = true;
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(tbl));
  o.write_buffer_size = write_buffer;
  o.max_write_buffer_number = 2;
  o.target_file_size_base = 16 << 20;
  o.max_bytes_for_level_base = 64 << 20;
  return o;
}

std::vector<rocksdb::ColumnFamilyDescriptor> cf_descriptors() {
  static const std::shared_ptr<rocksdb::Cache> cache = rocksdb::NewLRUCache(kBlockCacheBytes);
  return {
      {rocksdb::kDefaultColumnFamilyName, cf_options(cache, kSmallWriteBuffer, 4 * 1024)},
      // Larger blocks: replay is sequential.
      {kEventsCf, cf_options(cache, kEventsWriteBuffer, 16 * 1024)},
      {kStreamsCf, cf_options(cache, kIndexWriteBuffer, 4 * 1024)},
      {kMetaCf, cf_options(cache, kSmallWriteBuffer, 4 * 1024)},
  };
}

rocksdb::DBOptions write_options() {
  rocksdb::DBOptions opts;
  opts.create_if_missing = true;
  opts.create_missing_column_families = true;
  opts.max_background_jobs = 2;
  // Table files are opened on one thread: the default spawns 16 short-lived threads per
  // column family on every open (about 40 ms here) for a handful of files.
  opts.max_file_opening_threads = 1;
  // The WAL is recycled once every column family has flushed past it: bounded, so a restart
  // replays little of it into memtables.
  opts.max_total_wal_size = 16 << 20;
  opts.keep_log_file_num = 2;  // RocksDB's own info LOG files
  return opts;
}

// Free bytes below which the log is opened read-only (see open()).
constexpr uint64_t kRoomToOpen = 1 << 20;

}  // namespace

namespace detail {

status from_rocks(const rocksdb::Status& s, const std::string& what) {
  std::string m = what + ": " + s.ToString();
  if (s.IsNotFound()) return status::not_found(m);
  if (s.IsCorruption()) return status::corruption(m);
  if (s.IsInvalidArgument()) return status::invalid_argument(m);
  return status::io_error(m);
}

rocks_event_log::rocks_event_log(rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*> handles,
                                 bool read_only, std::string secondary_dir)
    : db_(db),
      handles_(std::move(handles)),
      read_only_(read_only),
      secondary_dir_(std::move(secondary_dir)) {
  events_ = handles_[1];
  streams_ = handles_[2];
  meta_ = handles_[3];
}

rocks_event_log::~rocks_event_log() {
  for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
  handles_.clear();
  db_->Close();
  delete db_;
  if (!secondary_dir_.empty()) {
    std::error_code ec;
    fs::remove_all(secondary_dir_, ec);
  }
}

status rocks_event_log::load_head() {
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

status rocks_event_log::wal_failed_status() {
  // Resume() clears RocksDB's background error once there is room again; until it does,
  // nothing is written (the batch that failed was not applied: a WriteBatch is atomic).
  if (disk_guard::full()) return status::no_space("appending events: the disk holding berth's data is full; "
                                                  "writes resume by themselves once space is freed");
  auto s = db_->Resume();
  if (!s.ok()) {
    // Busy: RocksDB's own recovery is under way (it waits for room for a whole memtable).
    auto what = "the event log is recovering from a failed write (" + s.ToString() + "); retry later";
    return wal_no_space_ ? status::no_space(what) : status::io_error(what);
  }
  wal_failed_ = false;
  return status::ok();
}

status rocks_event_log::write_failed(const rocksdb::Status& s) {
  if (s.IsNoSpace() || s.ToString().find("No space left") != std::string::npos) {
    disk_guard::note_no_space();
    wal_failed_ = wal_no_space_ = true;
    return status::no_space("writing events: " + s.ToString());
  }
  if (s.IsIOError()) wal_failed_ = true, wal_no_space_ = false;
  return from_rocks(s, "writing events");
}

status rocks_event_log::reopen_read_write() {
  std::unique_lock<std::shared_mutex> db_lock(db_mu_);
  rocksdb::DBOptions opts = write_options();
  auto cfs = cf_descriptors();
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
  handles_.clear();
  db_->Close();
  delete db_;
  auto s = rocksdb::DB::Open(opts, reopen_dir_, cfs, &handles, &db);
  bool writable = s.ok();
  if (!writable) s = rocksdb::DB::OpenForReadOnly(opts, reopen_dir_, cfs, &handles, &db);
  if (!s.ok()) return from_rocks(s, "reopening the event log");  // unusable: every call fails from here
  db_ = db;
  handles_ = std::move(handles);
  events_ = handles_[1];
  streams_ = handles_[2];
  meta_ = handles_[3];
  if (!writable) return status::no_space("reopening the event log for writing failed; still read-only");
  read_only_ = false;
  reopen_dir_.clear();
  return status::ok();
}

status rocks_event_log::append(const std::vector<new_event>& events, bool sync,
                               std::vector<event_record>* out) {
  if (read_only_ && !reopen_dir_.empty()) {
    // Started on a full disk: writable again once the disk guard sees room.
    if (auto room = disk_guard::room("appending events"); !room) return room;
    std::lock_guard<std::mutex> guard(mu_);
    if (read_only_ && !reopen_dir_.empty())
      if (auto st = reopen_read_write(); !st) return st;
  }
  if (read_only_) return status::invalid_argument("event log is open read-only");
  std::shared_lock<std::shared_mutex> db_lock(db_mu_);
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
  // A full disk is refused before RocksDB sees ENOSPC: a failed WAL append poisons its writer.
  if (auto room = disk_guard::room("appending events"); !room) return room;
  std::lock_guard<std::mutex> guard(mu_);
  if (wal_failed_) return wal_failed_status();
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
  if (!s.ok()) return write_failed(s);
  head_ = std::move(next);
  last_seq_.store(head_.seq, std::memory_order_release);
  if (out != nullptr) *out = std::move(recs);
  return status::ok();
}

}  // namespace detail

status event_log::open(const std::string& dir, mode m, std::unique_ptr<event_log>* out) {
  using detail::from_rocks;
  using detail::rocks_event_log;
  auto cfs = cf_descriptors();
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  std::string secondary;
  bool without_room = false;
  if (m == mode::read_write) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return status::io_error("cannot create " + dir + ": " + ec.message());
    auto opts = write_options();
    // On a disk with no room RocksDB aborts while opening for writing (it must write a WAL,
    // a MANIFEST and an OPTIONS file): open read-only then, and reopen once there is room.
    without_room = disk_guard::full() && disk_guard::free_bytes() < kRoomToOpen;
    auto s = without_room ? rocksdb::DB::OpenForReadOnly(opts, dir, cfs, &handles, &db)
                          : rocksdb::DB::Open(opts, dir, cfs, &handles, &db);
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
  if (without_room) log->opened_without_room(dir);
  auto st = log->load_head();
  if (!st) return st;
  *out = std::move(log);
  return status::ok();
}

}  // namespace berth
