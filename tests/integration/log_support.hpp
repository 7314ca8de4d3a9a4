// For the log stream tests (test_logs.cpp): an SSE client that reads a stream as it arrives
// (libcurl, on its own thread) and can hang up at any moment, as a user's `logs -f` or a
// browser tab would; and the lines app (tests/apps/lines).
#pragma once
#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/harness.hpp"

namespace berth::it {

struct sse_message {
  std::string id, event, data;
  json body;  // data parsed (discarded when not JSON)
};

class sse_reader {
 public:
  // GET 127.0.0.1:port + path with the test token; `last_event_id` sent as Last-Event-ID.
  sse_reader(uint16_t port, const std::string& path, const std::string& last_event_id = "");
  ~sse_reader();  // hangs up
  sse_reader(const sse_reader&) = delete;
  sse_reader& operator=(const sse_reader&) = delete;
  // Waits until `pred(messages so far)` holds, the stream ends, or `timeout` passes.
  bool wait_for(const std::function<bool(const std::vector<sse_message>&)>& pred,
                std::chrono::milliseconds timeout);
  bool wait_ended(std::chrono::milliseconds timeout);
  // Waits until the raw stream (comments included) contains `text`.
  bool wait_raw(const std::string& text, std::chrono::milliseconds timeout);
  void hang_up();  // closes the connection (the next callback aborts the transfer)
  std::vector<sse_message> messages() const;
  std::string raw() const;
  long status() const { return status_; }
  std::string content_type() const;
  bool ended() const { return ended_; }

 private:
  static size_t on_data(char* p, size_t size, size_t n, void* self);
  static int on_progress(void* self, long long, long long, long long, long long);
  void parse();
  void learn_head();  // status and Content-Type, once the head has come

  void* handle_ = nullptr;  // the CURL easy handle, on the reader's thread
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string buffer_, raw_, content_type_;
  std::vector<sse_message> messages_;
  std::atomic<bool> stop_{false};
  std::atomic<long> status_{-1};
  std::atomic<bool> ended_{false};
  std::atomic<bool> finished_{false};  // the transfer is over, however it ended
  std::thread thread_;
};

// All the text of the `log` events, in order.
std::string log_text(const std::vector<sse_message>& m);
// The events named `name`.
std::vector<sse_message> events_named(const std::vector<sse_message>& m, const std::string& name);

// A copy of tests/apps/lines in <tmp>/<dir> with TAG `tag`; a manifest for it (production
// only, no build: the source is the release).
std::string make_lines_app(const temp_dir& tmp, const std::string& dir, const std::string& tag);
json lines_manifest(const std::string& name, const std::string& src);
// GET /emit?n=count on the app's production port; the app's total so far (-1: no answer).
int emit_lines(uint16_t port, int count);

}  // namespace berth::it
