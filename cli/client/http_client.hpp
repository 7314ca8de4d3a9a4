// The client verbs' HTTP to a berth server (libcurl): where the server is and which token to
// send, one request at a time, and event streams read as they arrive.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cli/client/sse_reader.hpp"

namespace berth::cli {

// Filled from the verbs' common flags (--url/BERTH_URL, --token/BERTH_TOKEN, --data/BERTH_DATA,
// --cacert/BERTH_CACERT, --json).
struct client_options {
  std::string url = "http://127.0.0.1:7070";
  std::string token;           // empty: the content of <data>/token, when readable
  std::string data = "./berth-data";
  std::string cacert;          // a CA bundle for an https server with its own CA
  bool json = false;
};

struct response {
  int status = 0;       // 0: no answer (see error)
  std::string body;
  std::string error;    // the transport error when status is 0
};

enum class stream_end {
  ended,    // the server closed the stream after a 200 answer
  stopped,  // `stop` was set or the handler returned false
  refused,  // the server answered something else than 200 (status, body)
  dropped,  // no answer, or the connection broke or went silent (error)
};

struct stream_result {
  stream_end how = stream_end::dropped;
  int status = 0;     // the answer's status (0: none came)
  std::string body;   // the answer's body when refused
  std::string error;  // the transport error when dropped
};

class http_client {
 public:
  // Reads the token file now when no token was given.
  explicit http_client(client_options opts);
  ~http_client();
  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  // One request; `path` starts with '/'. A body is sent as application/json. The answer is
  // awaited for `timeout_s` seconds (0: 300 s, the default).
  response request(const std::string& method, const std::string& path, const std::string& body = "",
                   long timeout_s = 0);
  // GET an event stream and hand each event to `on_event` as it arrives, until the server ends
  // it, `on_event` returns false, `stop` becomes true (checked at least once a second), or the
  // connection fails or stays silent for 45 s (the server sends keep-alives every 15 s).
  // `on_tick` (optional) is called between events, several times a second, for animations.
  stream_result stream(const std::string& path, const std::vector<std::string>& headers,
                       const std::function<bool(const sse_message&)>& on_event,
                       const std::atomic<bool>* stop = nullptr, const std::function<void()>& on_tick = {});
  // Sends the first `size` bytes of the open file `fd` (read with pread from offset 0) as the
  // body of a PUT, with Content-Length (never chunked) and Expect: 100-continue, so the server
  // can refuse before any byte is sent. `on_progress(sent, total)` is called as bytes go out.
  response upload(const std::string& path, int fd, uint64_t size, const std::string& content_type,
                  const std::function<void(uint64_t sent, uint64_t total)>& on_progress = {});

  const client_options& options() const { return opts_; }
  // Escapes one query or path value.
  std::string escape(const std::string& value) const;

 private:
  struct curl_handle;
  void prepare(const std::string& method, const std::string& path, const std::vector<std::string>& headers);
  client_options opts_;
  std::unique_ptr<curl_handle> curl_;
};

}  // namespace berth::cli
