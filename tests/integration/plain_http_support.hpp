// Plain-socket HTTP pieces for proxy tests that must see individual connections: a tiny
// upstream that answers its name (and turns an Upgrade request into a 101 echo tunnel), and a
// kept-alive client connection. Every read is bounded (2 s).
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "tests/integration/loopback_server.hpp"

namespace berth::it {

// Listens on 127.0.0.1:<free port> until destroyed. A GET is answered 200 with body
// "<name>\n" (keep-alive); a request with "Upgrade:" is answered 101 and every byte after it is
// echoed back until the peer closes.
class tiny_upstream {
 public:
  explicit tiny_upstream(std::string name);
  tiny_upstream(const tiny_upstream&) = delete;
  tiny_upstream& operator=(const tiny_upstream&) = delete;
  uint16_t port() const { return server_.port(); }
  const std::string& name() const { return name_; }
  int connections() const { return server_.accepted(); }  // accepted so far

 private:
  void serve(int fd);
  std::string name_;
  loopback_server server_;  // last: it stops (joins serve()) before name_ goes
};

struct plain_response {
  int status = -1;  // -1: no (complete) answer; error says why
  std::string error;
  std::map<std::string, std::string> headers;  // names lowercase
  std::string body;
  std::string header(const std::string& lower_name) const;
};

// One client connection to 127.0.0.1:<port>, kept alive across get()s.
class plain_connection {
 public:
  explicit plain_connection(uint16_t port);
  ~plain_connection();
  plain_connection(const plain_connection&) = delete;
  plain_connection& operator=(const plain_connection&) = delete;
  bool connected() const { return fd_ >= 0; }
  // GET <path> with Host <host>; the answer must have a Content-Length and start within wait_ms.
  plain_response get(const std::string& host, const std::string& path, int wait_ms = 2000);
  // Sends an Upgrade request; true when the answer is 101 (the connection is then a tunnel).
  bool upgrade(const std::string& host, std::string* error);
  // On a tunnel: sends `text`, reads back exactly as many bytes; true when they are equal.
  bool echo(const std::string& text, std::string* error);
  // True when the peer has closed (EOF seen without blocking).
  bool peer_closed();

 private:
  bool read_head(std::string* head, std::string* error, int wait_ms = 2000);
  int fd_ = -1;
  std::string buffered_;
};

}  // namespace berth::it
