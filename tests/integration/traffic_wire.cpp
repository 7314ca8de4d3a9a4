#include "tests/integration/traffic_wire.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace berth::it::wire {

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string ssl_errors() {
  std::string s;
  for (unsigned long e; (e = ERR_get_error()) != 0;) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!s.empty()) s += "; ";
    s += buf;
  }
  return s;
}

bool is_ip_literal(const std::string& name) {
  in6_addr a6{};
  in_addr a4{};
  return inet_pton(AF_INET, name.c_str(), &a4) == 1 || inet_pton(AF_INET6, name.c_str(), &a6) == 1;
}

// Connects fd to host:port within `limit`; "" or why not.
std::string connect_within(int fd, const std::string& host, uint16_t port, milliseconds limit) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1) return "not an IPv4 address: " + host;
  int flags = fcntl(fd, F_GETFL, 0);
  fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  if (rc != 0 && errno != EINPROGRESS) return std::string("connect: ") + std::strerror(errno);
  if (rc != 0) {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, static_cast<int>(limit.count())) != 1) return "connect: timed out";
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return std::string("connect: ") + std::strerror(err);
  }
  fcntl(fd, F_SETFL, flags);
  return "";
}

}  // namespace

std::string host_header(const target& t) {
  return t.host_header.empty() ? t.host + ":" + std::to_string(t.port) : t.host_header;
}

std::string server_name(const target& t) {
  auto h = host_header(t);
  if (!h.empty() && h[0] == '[') return h.substr(1, h.find(']') - 1);
  auto colon = h.rfind(':');
  return colon == std::string::npos ? h : h.substr(0, colon);
}

connection::~connection() { close(); }

void connection::close() {
  if (ssl_) {
    SSL_shutdown(ssl_);  // one close_notify; we do not wait for the peer's
    SSL_free(ssl_);
    ssl_ = nullptr;
  }
  if (ctx_) {
    SSL_CTX_free(ctx_);
    ctx_ = nullptr;
  }
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

std::string connection::open(const target& t, const std::vector<std::string>& alpn) {
  close();
  error.clear();
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return error = std::string("socket: ") + std::strerror(errno);
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  // A backstop for a TLS record that never completes (reads are polled before they block).
  timeval tv{2, 0};
  setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (auto e = connect_within(fd_, t.host, t.port, milliseconds(2000)); !e.empty()) {
    close();
    return error = e;
  }
  if (!t.tls.on) return "";
  ctx_ = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
  if (t.tls.ca_file.empty() || SSL_CTX_load_verify_locations(ctx_, t.tls.ca_file.c_str(), nullptr) != 1) {
    auto e = "cannot load CA file '" + t.tls.ca_file + "': " + ssl_errors();
    close();
    return error = e;
  }
  if (!alpn.empty()) {
    std::string wire;
    for (auto& p : alpn) wire += static_cast<char>(p.size()) + p;
    SSL_CTX_set_alpn_protos(ctx_, reinterpret_cast<const unsigned char*>(wire.data()),
                            static_cast<unsigned>(wire.size()));
  }
  ssl_ = SSL_new(ctx_);
  SSL_set_fd(ssl_, fd_);
  auto name = server_name(t);
  if (!is_ip_literal(name)) SSL_set_tlsext_host_name(ssl_, name.c_str());
  SSL_set1_host(ssl_, name.c_str());
  if (SSL_connect(ssl_) != 1) {
    long verify = SSL_get_verify_result(ssl_);
    auto e = "TLS handshake: " + ssl_errors() +
             (verify != X509_V_OK ? std::string(" (verify: ") + X509_verify_cert_error_string(verify) + ")" : "");
    close();
    return error = e;
  }
  return "";
}

std::string connection::alpn() const {
  if (!ssl_) return "";
  const unsigned char* p = nullptr;
  unsigned n = 0;
  SSL_get0_alpn_selected(ssl_, &p, &n);
  return std::string(reinterpret_cast<const char*>(p), n);
}

bool connection::send_all(const std::string& bytes) {
  if (fd_ < 0) return (error = "not connected"), false;
  size_t at = 0;
  while (at < bytes.size()) {
    if (ssl_) {
      int n = SSL_write(ssl_, bytes.data() + at, static_cast<int>(bytes.size() - at));
      if (n <= 0) return (error = "TLS write: " + ssl_errors() + " " + std::strerror(errno)), false;
      at += static_cast<size_t>(n);
    } else {
      auto n = ::send(fd_, bytes.data() + at, bytes.size() - at, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return (error = std::string("write: ") + std::strerror(errno)), false;
      at += static_cast<size_t>(n);
    }
  }
  return true;
}

read_result connection::read_some(std::string& buf, milliseconds wait) {
  if (fd_ < 0) return (error = "not connected"), broken;
  char tmp[16384];
  if (!(ssl_ && SSL_pending(ssl_) > 0)) {
    pollfd p{fd_, POLLIN, 0};
    int rc = ::poll(&p, 1, static_cast<int>(wait.count()));
    if (rc == 0) return nothing_yet;
    if (rc < 0) return errno == EINTR ? nothing_yet : ((error = "poll failed"), broken);
  }
  if (!ssl_) {
    auto n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n > 0) return buf.append(tmp, static_cast<size_t>(n)), got_bytes;
    if (n == 0) return (error = "closed by the peer (FIN)"), peer_closed;
    if (errno == EAGAIN || errno == EINTR) return nothing_yet;
    return (error = std::string("read: ") + std::strerror(errno)), broken;
  }
  ERR_clear_error();
  int n = SSL_read(ssl_, tmp, sizeof tmp);
  if (n > 0) return buf.append(tmp, static_cast<size_t>(n)), got_bytes;
  switch (SSL_get_error(ssl_, n)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
      return nothing_yet;  // a record with no application data (a session ticket)
    case SSL_ERROR_ZERO_RETURN:
      return (error = "closed by the peer (TLS close_notify)"), peer_closed;
    case SSL_ERROR_SYSCALL:
      if (errno == 0 || ERR_peek_error() == 0) {
        if (errno == EAGAIN) return nothing_yet;
        if (errno == 0) return (error = "closed by the peer (FIN without close_notify)"), peer_closed;
      }
      return (error = std::string("TLS read: ") + std::strerror(errno) + " " + ssl_errors()), broken;
    default:
      return (error = "TLS read: " + ssl_errors()), broken;
  }
}

std::string response::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? "" : it->second;
}

bool response::connection_close() const { return lower(header("connection")).find("close") != std::string::npos; }

bool response::chunked() const { return lower(header("transfer-encoding")).find("chunked") != std::string::npos; }

bool take_head(std::string& buf, response& r) {
  auto end = buf.find("\r\n\r\n");
  if (end == std::string::npos) return false;
  std::string head = buf.substr(0, end);
  buf.erase(0, end + 4);
  r.headers.clear();
  size_t line_end = head.find("\r\n");
  std::string status_line = head.substr(0, line_end);
  r.status = 0;
  if (status_line.rfind("HTTP/1.", 0) == 0 && status_line.size() >= 12)
    r.status = std::atoi(status_line.substr(9, 3).c_str());
  for (size_t at = line_end; at != std::string::npos && at < head.size();) {
    size_t next = head.find("\r\n", at + 2);
    std::string line = head.substr(at + 2, next == std::string::npos ? std::string::npos : next - at - 2);
    auto colon = line.find(':');
    if (colon != std::string::npos) {
      auto value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(" \t"));
      r.headers[lower(line.substr(0, colon))] = value;
    }
    at = next;
  }
  return true;
}

int take_chunk(std::string& buf, std::string& data) {
  auto eol = buf.find("\r\n");
  if (eol == std::string::npos) return buf.size() > 64 ? -1 : 0;
  char* end = nullptr;
  unsigned long size = std::strtoul(buf.c_str(), &end, 16);
  if (end == buf.c_str()) return -1;
  if (size == 0) {
    // The last chunk: trailers (usually none) end with an empty line.
    auto trailers_end = buf.find("\r\n\r\n", eol);
    if (eol + 2 <= buf.size() && buf.compare(eol, 4, "\r\n\r\n") == 0) trailers_end = eol;
    if (trailers_end == std::string::npos) return 0;
    buf.erase(0, trailers_end + 4);
    return 2;
  }
  if (buf.size() < eol + 2 + size + 2) return 0;
  data = buf.substr(eol + 2, size);
  if (buf.compare(eol + 2 + size, 2, "\r\n") != 0) return -1;
  buf.erase(0, eol + 2 + size + 2);
  return 1;
}

response read_response(connection& c, std::string& buf, std::chrono::steady_clock::time_point deadline,
                       bool& closed) {
  using clock = std::chrono::steady_clock;
  response r;
  closed = false;
  auto more = [&]() -> bool {  // false when no more bytes will come
    auto left = std::chrono::duration_cast<milliseconds>(deadline - clock::now());
    if (left.count() <= 0) return false;
    auto got = c.read_some(buf, left);
    if (got == peer_closed || got == broken) closed = true;
    return got == got_bytes || got == nothing_yet;
  };
  while (!take_head(buf, r))
    if (!more()) return r;
  if (r.status == 0) return r;
  if (r.status == 101 || r.status == 204 || r.status == 304) return r.complete = true, r;
  if (r.chunked()) {
    for (;;) {
      std::string data;
      int got = take_chunk(buf, data);
      if (got == 1) r.body += data;
      if (got == 2) return r.complete = true, r;
      if (got == -1) return r;
      if (got == 0 && !more()) return r;
    }
  }
  auto length = r.header("content-length");
  if (length.empty()) {  // delimited by the close
    while (more()) {
    }
    r.body = buf;
    buf.clear();
    r.complete = closed;
    return r;
  }
  size_t n = std::strtoull(length.c_str(), nullptr, 10);
  while (buf.size() < n)
    if (!more()) return r;
  r.body = buf.substr(0, n);
  buf.erase(0, n);
  r.complete = true;
  return r;
}

std::string ws_key() {
  unsigned char raw[16];
  RAND_bytes(raw, sizeof raw);
  unsigned char out[32];
  int n = EVP_EncodeBlock(out, raw, sizeof raw);
  return std::string(reinterpret_cast<char*>(out), static_cast<size_t>(n));
}

std::string ws_accept(const std::string& key) {
  std::string s = key + "258EAFA5-E914-47DA-95CA-C5AB0DC11B65";
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(s.data()), s.size(), digest);
  unsigned char out[64];
  int n = EVP_EncodeBlock(out, digest, SHA_DIGEST_LENGTH);
  return std::string(reinterpret_cast<char*>(out), static_cast<size_t>(n));
}

std::string ws_frame(int opcode, const std::string& payload) {
  std::string f;
  f += static_cast<char>(0x80 | opcode);
  size_t n = payload.size();
  if (n < 126) {
    f += static_cast<char>(0x80 | n);
  } else if (n < 65536) {
    f += static_cast<char>(0x80 | 126);
    f += static_cast<char>(n >> 8);
    f += static_cast<char>(n & 0xff);
  } else {
    f += static_cast<char>(0x80 | 127);
    for (int i = 7; i >= 0; --i) f += static_cast<char>((static_cast<uint64_t>(n) >> (8 * i)) & 0xff);
  }
  unsigned char mask[4];
  RAND_bytes(mask, 4);
  f.append(reinterpret_cast<char*>(mask), 4);
  for (size_t i = 0; i < n; ++i) f += static_cast<char>(payload[i] ^ mask[i % 4]);
  return f;
}

int take_ws_frame(std::string& buf, ws_message& m) {
  if (buf.size() < 2) return 0;
  auto b0 = static_cast<unsigned char>(buf[0]), b1 = static_cast<unsigned char>(buf[1]);
  if (!(b0 & 0x80) || (b1 & 0x80)) return -1;
  uint64_t n = b1 & 0x7f;
  size_t at = 2;
  if (n == 126) {
    if (buf.size() < 4) return 0;
    n = (static_cast<unsigned char>(buf[2]) << 8) | static_cast<unsigned char>(buf[3]);
    at = 4;
  } else if (n == 127) {
    if (buf.size() < 10) return 0;
    n = 0;
    for (int i = 0; i < 8; ++i) n = (n << 8) | static_cast<unsigned char>(buf[2 + i]);
    at = 10;
  }
  if (buf.size() < at + n) return 0;
  m.opcode = b0 & 0x0f;
  m.payload = buf.substr(at, n);
  buf.erase(0, at + n);
  return 1;
}

}  // namespace berth::it::wire
