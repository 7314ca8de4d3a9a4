// A TLS client on OpenSSL for tests that speak HTTPS to 127.0.0.1 with a site's name as SNI and
// verify its certificate against a given root (test_tls_front.cpp; usable by any HTTPS test).
#pragma once
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;

namespace berth::it {

// A connected TCP socket to 127.0.0.1:port (-1 when the connect fails).
int connect_loopback(uint16_t port);

// One TLS connection to 127.0.0.1:port with SNI `name`, verifying the server's certificate
// against `ca_file` (chain and name). Blocking calls, each bounded by the timeout given.
class tls_connection {
 public:
  tls_connection() = default;
  ~tls_connection();
  tls_connection(const tls_connection&) = delete;
  tls_connection& operator=(const tls_connection&) = delete;

  // Connects and completes the handshake; false with error() set when either fails.
  bool open(uint16_t port, const std::string& name, const std::string& ca_file,
            const std::vector<std::string>& alpn = {"http/1.1"},
            std::chrono::milliseconds timeout = std::chrono::seconds(20));
  bool write(const std::string& bytes);
  // Reads what arrives within `wait` into received(); false once the peer closed (or failed).
  bool read_for(std::chrono::milliseconds wait);
  // Reads until `received()` contains `needle`, the peer closes, or `timeout` passes.
  bool read_until(const std::string& needle, std::chrono::milliseconds timeout);

  const std::string& error() const { return error_; }
  const std::string& received() const { return received_; }
  void clear_received() { received_.clear(); }
  std::string alpn() const;             // the protocol the server selected ("" = none)
  std::string peer_subject() const;     // "CN=..." of the leaf certificate
  std::string peer_issuer() const;      // "CN=..." of its issuer
  std::vector<std::string> peer_names() const;  // DNS names of the leaf's subjectAltName
  std::string peer_serial() const;      // the leaf's serial number, hex
  int64_t peer_seconds_left() const;    // seconds from now to the leaf's notAfter

 private:
  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  std::string error_, received_;
};

// "GET <path>" over a fresh verified connection with Connection: close; the whole answer as
// received ("" and *error set when the handshake or the exchange failed).
std::string tls_get(uint16_t port, const std::string& name, const std::string& ca_file,
                    const std::string& path, std::string* error = nullptr);

// A WebSocket frame as a client sends it (masked, FIN, text) and the payload of the first
// complete server frame in `bytes` ("" when there is none yet).
std::string ws_client_text_frame(const std::string& text);
std::string ws_first_server_text(const std::string& bytes);

}  // namespace berth::it
