// Per-upstream request figures as the router saw them, for canaries. HAProxy logs one line per
// request of a route that has a traffic split (both sides) to a unix datagram socket
// (haproxy.hpp, "traffic.sock"); the meter reads them on its own thread and keeps, per upstream
// port it watches, every request since that port's window began.
//
// No actor code. Every method is thread-safe and never blocks on the socket.
#pragma once
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <sys/types.h>

#include "messages/deployment.hpp"
#include "runtime/status.hpp"

namespace berth {

// One request as HAProxy logged it. The line (haproxy.hpp's log-format) is
// "<upstream_port> <status> <Tr> <Ta> <termination_state>", e.g. "41007 200 3 4 --".
struct request_sample {
  uint16_t port = 0;
  int status = -1;       // -1: no answer
  int64_t header_ms = -1;  // Tr: request sent → response headers (-1: none came)
  int64_t total_ms = -1;   // Ta: the whole request
  std::string termination;  // HAProxy's 2-4 letter termination state ("--" normal)
  // 5xx, no answer at all, or ended by the server side (reset, timeout: 'S' or 's' first). A
  // request the client ended ('C' or 'c' first) is an error only with a 5xx answer.
  bool error() const;
  // The client gave up before any answer (e.g. "-1 -1 300 CD"): says nothing about the app,
  // so it is not counted at all.
  bool client_gave_up() const;
  // The latency counted for p99: header_ms, or total_ms when no header came.
  int64_t latency_ms() const;
};
// false for a line that is not of that form.
bool parse_request_line(const std::string& line, request_sample* out);

class traffic_meter {
 public:
  // Binds a unix datagram socket at `path` (a stale file there is replaced; the folder is made
  // 0700 when missing), mode 0600, and starts the reader thread. io_error on failure.
  static status open(const std::string& path, std::shared_ptr<traffic_meter>* out);
  // Stops the reader and removes the socket (unless the path names another socket by now).
  ~traffic_meter();
  traffic_meter(const traffic_meter&) = delete;
  traffic_meter& operator=(const traffic_meter&) = delete;

  // Starts a new window for each of `ports`: what was counted for them before is forgotten.
  void restart(const std::vector<uint16_t>& ports);
  // The figures of `port` in its window (zero requests when it is not watched).
  side_figures read(uint16_t port) const;
  // Stops counting `ports`: their lines are dropped from now on.
  void forget(const std::vector<uint16_t>& ports);
  // Counts one request as if it had been read from the socket (the reader calls it too);
  // ignored for an unwatched port or when the client gave up.
  void count(const request_sample& s);
  const std::string& path() const { return path_; }
  // Lines read that did not parse, and datagrams read in all (for tests and /metrics).
  uint64_t malformed() const { return malformed_.load(); }
  uint64_t received() const { return received_.load(); }

 private:
  struct window {
    uint64_t requests = 0, errors = 0;
    std::map<int64_t, uint64_t> latencies;  // ms → requests: exact percentiles at ms resolution
  };
  traffic_meter(std::string path, int fd, const int wake[2]);
  void read_loop();

  std::string path_;
  int fd_ = -1;
  int wake_[2] = {-1, -1};  // the destructor writes here to stop the reader
  dev_t dev_ = 0;           // the socket file bound at path_ (the destructor removes only it)
  ino_t ino_ = 0;
  mutable std::mutex m_;
  std::map<uint16_t, window> windows_;  // the watched ports
  std::atomic<uint64_t> malformed_{0}, received_{0};
  std::thread reader_;
};

// The socket's place beside HAProxy's files: <haproxy dir>/traffic.sock.
std::string traffic_socket_path(const std::string& haproxy_dir);

}  // namespace berth
