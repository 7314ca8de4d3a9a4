// One SSE connection reading an environment's log (GET /api/projects/{name}/logs): the backlog
// from a start offset, then (follow) each batch of new lines as the log watcher signals that
// the file grew or rotated: pushed, never polled. Offsets are logical (runtime/logs/
// rotated_log.hpp), so a reconnect with the last `id` misses nothing and repeats nothing.
// Per connection state only: the log, its mask, the next offset to send.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "http/server.hpp"
#include "runtime/logs/log_watcher.hpp"
#include "runtime/logs/mask.hpp"
#include "runtime/logs/rotated_log.hpp"

namespace httplib {
class DataSink;
}

namespace berth::http {

struct log_request {
  bool follow = false;
  uint64_t start = 0;      // the first offset to send (validated by the route)
  uint64_t gap_from = 0;   // when < start: a `gap` event first (the asked offset was lost)
};

class log_stream {
 public:
  // Starts watching `path` before the first read, so no change after it is missed.
  log_stream(const context& ctx, std::string path, secret_mask mask, log_request r);
  // One round of the chunked content provider; false drops the connection.
  bool step(httplib::DataSink& sink);

 private:
  using clock_type = std::chrono::steady_clock;
  bool send(httplib::DataSink& sink, const std::string& frame);
  // Sends what the log holds from next_ (up to `budget` bytes); sets caught_up at its end.
  bool send_new(httplib::DataSink& sink, size_t budget, bool& caught_up);
  bool close(httplib::DataSink& sink, const std::string& frame);

  const context& ctx_;
  std::string path_;
  secret_mask mask_;
  log_request req_;
  std::shared_ptr<log_signal> signal_;
  uint64_t next_ = 0;
  bool started_ = false, backlog_done_ = false;
  clock_type::time_point last_write_;
};

}  // namespace berth::http
