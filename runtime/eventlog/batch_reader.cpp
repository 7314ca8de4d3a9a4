#include "runtime/eventlog/batch_reader.hpp"

#include <algorithm>

#include "runtime/eventlog/event_codec.hpp"
#include "runtime/eventlog/event_log.hpp"

namespace berth::detail {

batch_reader::batch_reader(rocksdb::Iterator* it, int hash_threads)
    : it_(it), check_hashes_(hash_threads > 0) {
  for (size_t i = 0; i < kBatches; ++i) {
    pool_.push_back(std::make_unique<read_batch>());
    pool_.back()->items.resize(kBatchSize);
    free_.push_back(pool_.back().get());
  }
  reader_ = std::thread([this] { read_loop(); });
  for (int i = 0; i < hash_threads; ++i) hashers_.emplace_back([this] { hash_loop(); });
}

batch_reader::~batch_reader() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  reader_.join();
  for (auto& t : hashers_) t.join();
}

void batch_reader::read_loop() {
  for (;;) {
    read_batch* b;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !free_.empty(); });
      if (stop_) break;
      b = free_.front();
      free_.pop_front();
    }
    b->n = 0;
    b->end = false;
    b->hashed = !check_hashes_;
    while (b->n < kBatchSize && it_->Valid()) {
      auto& item = b->items[b->n++];
      auto k = it_->key();
      item.key_ok = k.size() == 8;
      item.key_seq = item.key_ok ? get_be64(k.data()) : 0;
      item.decoded = item.key_ok && decode_value(it_->value(), item.rec);
      item.hash_ok = false;
      if (!item.decoded) {  // the consumer reports it; nothing after it is read
        b->end = true;
        break;
      }
      it_->Next();
    }
    if (!b->end && !it_->Valid()) {
      b->end = true;
      b->iter_status = it_->status();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      ordered_.push_back(b);
      if (check_hashes_) to_hash_.push_back(b);
      if (b->end) reading_done_ = true;
    }
    cv_.notify_all();
    if (b->end) break;
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
  cv_.wait(lock, [&] { return !ordered_.empty() && ordered_.front()->hashed; });
  auto* b = ordered_.front();
  ordered_.pop_front();
  return b;
}

void batch_reader::done(read_batch* b) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back(b);
  }
  cv_.notify_all();
}

int hash_thread_count() { return static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }

}  // namespace berth::detail
