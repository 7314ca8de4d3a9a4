// Incremental Server-Sent Events parsing (the reading side of http/sse.hpp): bytes in, as they
// arrive, complete events out. Lines are cut by berth's line_splitter.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "runtime/logs/log_follower.hpp"

namespace berth::cli {

struct sse_message {
  std::string event = "message";  // "message" when the event had no `event:` field
  std::string data;               // its data lines joined with '\n'
  std::string id;                 // its `id:` field, "" when none
};

class sse_reader {
 public:
  // The events that `chunk` completes (an event ends at a blank line), oldest first. Comments
  // (keep-alives) and events without data are dropped, as EventSource does.
  std::vector<sse_message> feed(std::string_view chunk);

 private:
  void field(const std::string& line);
  line_splitter lines_{size_t(1) << 30};  // a log event may carry up to 10000 lines
  sse_message current_;
  bool has_data_ = false;
};

}  // namespace berth::cli
