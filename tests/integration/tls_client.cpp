#include "tests/integration/tls_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

namespace berth::it {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

std::string ssl_errors() {
  std::string out;
  for (unsigned long e = ERR_get_error(); e != 0; e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "(no OpenSSL error)" : out;
}

void set_timeouts(int fd, std::chrono::milliseconds t) {
  timeval tv{static_cast<time_t>(t.count() / 1000), static_cast<suseconds_t>((t.count() % 1000) * 1000)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

}  // namespace

int connect_loopback(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

namespace {

std::string name_of(X509_NAME* n) {
  if (n == nullptr) return "";
  char buf[512];
  X509_NAME_oneline(n, buf, sizeof buf);
  return buf;
}

}  // namespace

// ---- tls_connection -------------------------------------------------------------------------

tls_connection::~tls_connection() {
  if (ssl_ != nullptr) SSL_free(ssl_);
  if (ctx_ != nullptr) SSL_CTX_free(ctx_);
  if (fd_ >= 0) ::close(fd_);
}

bool tls_connection::open(uint16_t port, const std::string& name, const std::string& ca_file,
                          const std::vector<std::string>& alpn, std::chrono::milliseconds timeout) {
  ctx_ = SSL_CTX_new(TLS_client_method());
  if (ctx_ == nullptr || SSL_CTX_load_verify_locations(ctx_, ca_file.c_str(), nullptr) != 1) {
    error_ = "cannot load " + ca_file + ": " + ssl_errors();
    return false;
  }
  SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
  std::string wire;  // ALPN: length-prefixed protocol names
  for (auto& p : alpn) wire += static_cast<char>(p.size()) + p;
  if (!wire.empty())
    SSL_CTX_set_alpn_protos(ctx_, reinterpret_cast<const unsigned char*>(wire.data()), static_cast<unsigned>(wire.size()));
  fd_ = connect_loopback(port);
  if (fd_ < 0) {
    error_ = "cannot connect to 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(errno);
    return false;
  }
  set_timeouts(fd_, timeout);
  ssl_ = SSL_new(ctx_);
  SSL_set_fd(ssl_, fd_);
  SSL_set_tlsext_host_name(ssl_, name.c_str());
  SSL_set1_host(ssl_, name.c_str());  // the certificate must name it
  if (SSL_connect(ssl_) != 1) {
    long v = SSL_get_verify_result(ssl_);
    error_ = "handshake failed: " + ssl_errors() +
             (v != X509_V_OK ? std::string(" (verify: ") + X509_verify_cert_error_string(v) + ")" : "");
    return false;
  }
  return true;
}

bool tls_connection::write(const std::string& bytes) {
  return ssl_ != nullptr && SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size())) == static_cast<int>(bytes.size());
}

bool tls_connection::read_for(std::chrono::milliseconds wait) {
  if (ssl_ == nullptr) return false;
  auto until = clock_type::now() + wait;
  char buf[4096];
  while (clock_type::now() < until) {
    if (SSL_pending(ssl_) == 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - clock_type::now());
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(std::max<int64_t>(1, left.count()))) <= 0) continue;
    }
    int n = SSL_read(ssl_, buf, sizeof buf);
    if (n > 0) {
      received_.append(buf, static_cast<size_t>(n));
      continue;
    }
    int err = SSL_get_error(ssl_, n);
    if (err == SSL_ERROR_WANT_READ) continue;  // a TLS 1.3 ticket, no data
    return false;                              // closed or broken
  }
  return true;
}

bool tls_connection::read_until(const std::string& needle, std::chrono::milliseconds timeout) {
  auto until = clock_type::now() + timeout;
  while (received_.find(needle) == std::string::npos) {
    if (clock_type::now() >= until) return false;
    if (!read_for(50ms)) return received_.find(needle) != std::string::npos;
  }
  return true;
}

std::string tls_connection::alpn() const {
  const unsigned char* p = nullptr;
  unsigned n = 0;
  if (ssl_ != nullptr) SSL_get0_alpn_selected(ssl_, &p, &n);
  return p == nullptr ? "" : std::string(reinterpret_cast<const char*>(p), n);
}

std::string tls_connection::peer_subject() const {
  X509* c = ssl_ == nullptr ? nullptr : SSL_get_peer_certificate(ssl_);
  std::string s = c == nullptr ? "" : name_of(X509_get_subject_name(c));
  X509_free(c);
  return s;
}

std::string tls_connection::peer_issuer() const {
  X509* c = ssl_ == nullptr ? nullptr : SSL_get_peer_certificate(ssl_);
  std::string s = c == nullptr ? "" : name_of(X509_get_issuer_name(c));
  X509_free(c);
  return s;
}

std::vector<std::string> tls_connection::peer_names() const {
  std::vector<std::string> out;
  X509* c = ssl_ == nullptr ? nullptr : SSL_get_peer_certificate(ssl_);
  if (c == nullptr) return out;
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(c, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* g = sk_GENERAL_NAME_value(names, i);
    if (g->type == GEN_DNS)
      out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(g->d.dNSName)),
                       static_cast<size_t>(ASN1_STRING_length(g->d.dNSName)));
  }
  GENERAL_NAMES_free(names);
  X509_free(c);
  return out;
}

std::string tls_connection::peer_serial() const {
  X509* c = ssl_ == nullptr ? nullptr : SSL_get_peer_certificate(ssl_);
  if (c == nullptr) return "";
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(c), nullptr);
  char* hex = BN_bn2hex(bn);
  std::string s = hex;
  OPENSSL_free(hex);
  BN_free(bn);
  X509_free(c);
  return s;
}

int64_t tls_connection::peer_seconds_left() const {
  X509* c = ssl_ == nullptr ? nullptr : SSL_get_peer_certificate(ssl_);
  if (c == nullptr) return 0;
  int days = 0, secs = 0;
  ASN1_TIME_diff(&days, &secs, nullptr, X509_get0_notAfter(c));  // from now
  X509_free(c);
  return int64_t{days} * 86400 + secs;
}

std::string tls_get(uint16_t port, const std::string& name, const std::string& ca_file,
                    const std::string& path, std::string* error) {
  tls_connection c;
  if (!c.open(port, name, ca_file)) {
    if (error != nullptr) *error = c.error();
    return "";
  }
  c.write("GET " + path + " HTTP/1.1\r\nHost: " + name + "\r\nConnection: close\r\n\r\n");
  c.read_for(10s);  // until Caddy closes
  if (error != nullptr && c.received().empty()) *error = "no answer";
  return c.received();
}

// ---- WebSocket frames ----------------------------------------------------------------------

std::string ws_client_text_frame(const std::string& text) {
  std::string f = "\x81";
  f += static_cast<char>(0x80 | text.size());  // small frames only
  const char mask[4] = {0x12, 0x34, 0x56, 0x78};
  f.append(mask, 4);
  for (size_t i = 0; i < text.size(); ++i) f += static_cast<char>(text[i] ^ mask[i % 4]);
  return f;
}

std::string ws_first_server_text(const std::string& bytes) {
  if (bytes.size() < 2 || (static_cast<unsigned char>(bytes[0]) & 0x0f) != 0x1) return "";
  size_t len = static_cast<unsigned char>(bytes[1]) & 0x7f;
  if (len >= 126 || bytes.size() < 2 + len) return "";
  return bytes.substr(2, len);
}

}  // namespace berth::it
