// Real clients for the zero-downtime tests and bench_switch: a WebSocket client, a kept-alive
// POST client that never resends, a streaming-response reader, and a new-connection GET client.
// Each runs on its own thread until stop() and counts what a user would notice. Plain sockets
// (no TLS) unless given a tls_options (then OpenSSL, verifying against ca_file, SNI = host).
// get_clients (the canary tests and bench_canary): kept-alive GET clients on one port, totalled.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace berth::it {

struct tls_options {
  bool on = false;
  std::string ca_file;  // PEM roots the server's certificate must chain to
  bool http2 = false;   // offer h2 by ALPN (the client then speaks HTTP/2; http clients only)
};

// Where a client connects and what it sends as Host.
struct target {
  std::string host = "127.0.0.1";  // connect address
  uint16_t port = 0;
  std::string host_header;         // "" = "<host>:<port>"
  tls_options tls;
};

// Figures every client reports. "failed" = a request with no complete answer or a 5xx, or an
// unexpected close (a close the server did not announce: no Connection: close, no WebSocket
// close frame); each failure is described in `errors` (first 20 kept).
struct traffic_report {
  uint64_t ok = 0;
  uint64_t failed = 0;
  uint64_t unexpected_closes = 0;
  uint64_t clean_closes = 0;       // announced by the server (close frame / Connection: close)
  std::vector<double> latencies_ms;  // of the ok requests (or echo round trips)
  double longest_stall_ms = 0;       // longest time between two completed requests/echoes/chunks
  double longest_stall_end_ms = 0;   // when it ended, ms after start() (to line it up with a deploy)
  std::vector<std::string> errors;
  // Distinct response bodies' first line (which release answered); the kept-alive POST client
  // records "echo from release <X-Release>" (or "echo" when the answer has no X-Release).
  std::vector<std::string> bodies_seen;
  std::vector<double> clean_close_at_ms;  // when each clean close came, ms after start()
  std::string protocol;                   // what the last connection spoke: "http/1.1" or "h2"
};

// Runs on its own thread from start() to stop() (or destruction); stop() returns the figures.
class traffic_client {
 public:
  virtual ~traffic_client();
  void start();
  traffic_report stop();  // joins; returns the figures
  traffic_report snapshot();  // figures so far (thread-safe)
 protected:
  virtual void run(std::atomic<bool>& stopping) = 0;
  // For run(): each records one event (thread-safe). ok/progress end a stall; a failure or an
  // unexpected close is described in `errors` (with the time since start).
  void note_ok(double latency_ms, const std::string& body);
  void note_progress();  // a chunk or a message arrived: the stall clock restarts
  void note_failed(const std::string& what);
  void note_unexpected_close(const std::string& what);
  void note_clean_close();
  void note_protocol(const std::string& p);
  double ms_since_start() const;
  // Sleeps `d` or until stop() (true when stopping).
  bool pause(std::chrono::milliseconds d);
  std::mutex mu_;
  traffic_report rep_;
 private:
  void note_error(const std::string& what);
  std::chrono::steady_clock::time_point started_, last_progress_;
  std::atomic<bool> stopping_{false};
  std::thread th_;
};

// One WebSocket to `path`, a text message every `every`, each echo awaited (2 s, else failed).
// A close frame from the server is a clean close; the client then reconnects when `reconnect`.
std::unique_ptr<traffic_client> websocket_client(target t, std::string path, std::chrono::milliseconds every,
                                                 bool reconnect);
// One kept-alive connection sending POST `path` with a small body back to back (`every` apart),
// never resending: a request whose answer does not come is failed. After "Connection: close"
// it opens a new connection for the next request.
std::unique_ptr<traffic_client> keepalive_post_client(target t, std::string path, std::chrono::milliseconds every);
// One kept-alive HTTP/1.1 connection (over TLS too, never h2) sending GET `path` back to back
// (`every` apart), never resending; "Connection: close" opens a new one for the next request.
std::unique_ptr<traffic_client> keepalive_get_client(target t, std::string path, std::chrono::milliseconds every);
// A new connection per GET `path`, `every` apart.
std::unique_ptr<traffic_client> new_connection_client(target t, std::string path, std::chrono::milliseconds every);
// GET `path` whose answer streams a chunk at least every 200 ms; the client reads until the
// server ends it cleanly (then opens the next one) or it stalls past 2 s / breaks (failed).
std::unique_ptr<traffic_client> streaming_client(target t, std::string path);

// Kept-alive GET / clients on one port, started together, each `every` apart.
class get_clients {
 public:
  get_clients(uint16_t port, int count, std::chrono::milliseconds every);
  ~get_clients();
  struct totals {
    uint64_t ok = 0, failed = 0;
    uint64_t requests() const { return ok + failed; }
  };
  totals now();   // so far (thread-safe snapshots)
  totals stop();  // joins them; then reports() and errors() are final
  // Every client's first errors ("t+<ms>: ...") and the distinct answers they saw.
  std::vector<std::string> errors() const;
  std::vector<std::string> answers() const;

 private:
  std::vector<std::unique_ptr<traffic_client>> clients_;
  std::vector<traffic_report> reports_;
};

}  // namespace berth::it
