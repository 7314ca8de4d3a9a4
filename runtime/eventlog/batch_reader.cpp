#include "runtime/eventlog/batch_reader.hpp"

#include <algorithm>

#include "runtime/eventlog/event_codec.hpp"
#include "runtime/eventlog/event_log.hpp"

namespace berth::detail {

batch_reader::batch_reader(std::vector<rocksdb::Iterator*> its, uint64_t from, uint64_t last, int hash_threads)
    : from_(from),
      chunks_(last >= from ? (last - from) / kBatchSize + 1 : 1),
      check_hashes_(hash_threads > 0) {
  lanes_.resize(its.size());
  for (size_t t = 0; t < its.size(); ++t) {
    lanes_[t].it = its[t];
    for (size_t i = 0; i < kBatchesPerReader; ++i) {
      pool_.push_back(std::make_unique<read_batch>());
      pool_.back()->items.resize(kBatchSize);
      pool_.back()->lane = t;
      lanes_[t].free.push_back(pool_.back().get());
    }
  }
  for (size_t t = 0; t < its.size(); ++t) readers_.emplace_back([this, t] { read_loop(t); });
  for (int i = 0; i < hash_threads; ++i) hashers_.emplace_back([this] { hash_loop(); });
}

batch_reader::~batch_reader() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : readers_) t.join();
  for (auto& t : hashers_) t.join();
}

void batch_reader::read_loop(size_t t) {
  auto& lane = lanes_[t];
  auto* it = lane.it;
  const uint64_t step = lanes_.size();
  bool resume = false;  // the final chunk goes on from where the last batch stopped
  for (uint64_t c = t; c < chunks_; c += step) {
    read_batch* b;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !lane.free.empty(); });
      if (stop_) return;
      b = lane.free.front();
      lane.free.pop_front();
    }
    const bool final = c + 1 == chunks_;  // reads to the end, whatever the seqs
    const uint64_t start = from_ + c * kBatchSize;
    event_key end_key(start + kBatchSize);
    b->n = 0;
    b->end = false;
    b->hashed = !check_hashes_;
    if (!resume) {
      if (start == 0) it->SeekToFirst();  // keys shorter than 8 bytes sort before seq 0's
      else it->Seek(event_key(start).slice());
    }
    while (it->Valid() && (final || it->key().compare(end_key.slice()) < 0)) {
      if (b->n == b->items.size()) b->items.resize(b->items.size() * 2);  // the final chunk grows
      auto& item = b->items[b->n++];
      auto k = it->key();
      item.key_ok = k.size() == 8;
      item.key_seq = item.key_ok ? get_be64(k.data()) : 0;
      item.decoded = item.key_ok && decode_value(it->value(), item.rec);
      item.hash_ok = false;
      if (!item.decoded) {  // the consumer reports it; nothing after it matters
        b->end = true;
        break;
      }
      it->Next();
      if (final && b->n == kBatchSize) break;  // hand it over; the final chunk goes on
    }
    bool more_in_final = final && !b->end && it->Valid();
    if (!b->end && !more_in_final && (final || !it->status().ok())) {
      b->end = true;
      b->iter_status = it->status();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      lane.ordered.push_back(b);
      if (check_hashes_) to_hash_.push_back(b);
    }
    cv_.notify_all();
    if (b->end) return;
    resume = more_in_final;
    if (resume) c -= step;  // the same (final) chunk again
  }
}

void batch_reader::hash_loop() {
  for (;;) {
    read_batch* b;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !to_hash_.empty(); });
      if (stop_) return;
      b = to_hash_.front();
      to_hash_.pop_front();
    }
    for (size_t i = 0; i < b->n; ++i) {
      auto& item = b->items[i];
      item.hash_ok = item.decoded && item.rec.hash == event_hash(item.rec);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      b->hashed = true;
    }
    cv_.notify_all();
  }
}

read_batch* batch_reader::next() {
  std::unique_lock<std::mutex> lock(mu_);
  // The final chunk may come in several batches, all from its reader.
  auto& lane = lanes_[std::min(next_chunk_, chunks_ - 1) % lanes_.size()];
  cv_.wait(lock, [&] { return !lane.ordered.empty() && lane.ordered.front()->hashed; });
  auto* b = lane.ordered.front();
  lane.ordered.pop_front();
  ++next_chunk_;
  return b;
}

void batch_reader::done(read_batch* b) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    lanes_[b->lane].free.push_back(b);
  }
  cv_.notify_all();
}

uint64_t last_key_seq(rocksdb::Iterator* it) {
  it->SeekToLast();
  return it->Valid() && it->key().size() == 8 ? get_be64(it->key().data()) : 0;
}

int reader_thread_count() { return static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }

}  // namespace berth::detail
