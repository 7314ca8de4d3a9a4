#include "tests/integration/tls_support.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <httplib.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "runtime/proxy/caddy.hpp"
#include "tests/integration/deploy_support.hpp"

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

std::string name_of(X509_NAME* n) {
  if (n == nullptr) return "";
  char buf[512];
  X509_NAME_oneline(n, buf, sizeof buf);
  return buf;
}

std::string base64(const unsigned char* data, size_t n) {
  std::string out(4 * ((n + 2) / 3) + 1, '\0');
  int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(&out[0]), data, static_cast<int>(n));
  out.resize(static_cast<size_t>(len));
  return out;
}

std::string header_value(const std::string& head, const std::string& name) {
  std::istringstream in(head);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto colon = line.find(':');
    if (colon == std::string::npos || colon != name.size()) continue;
    if (strncasecmp(line.c_str(), name.c_str(), name.size()) != 0) continue;
    auto v = line.substr(colon + 1);
    v.erase(0, v.find_first_not_of(' '));
    return v;
  }
  return "";
}

bool send_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// Reads until `bytes` holds n bytes, the peer closes, or `stopping`.
bool read_at_least(int fd, std::string& bytes, size_t n, const std::atomic<bool>& stopping) {
  char buf[4096];
  while (bytes.size() < n) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) {
      if (stopping) return false;
      continue;
    }
    ssize_t r = ::recv(fd, buf, sizeof buf, 0);
    if (r <= 0) return false;
    bytes.append(buf, static_cast<size_t>(r));
  }
  return true;
}

// Echoes text frames (client frames are masked; server frames are not) until a close frame.
void websocket_echo(int fd, std::string pending, const std::atomic<bool>& stopping) {
  for (;;) {
    if (!read_at_least(fd, pending, 2, stopping)) return;
    unsigned opcode = static_cast<unsigned char>(pending[0]) & 0x0f;
    bool masked = (static_cast<unsigned char>(pending[1]) & 0x80) != 0;
    uint64_t len = static_cast<unsigned char>(pending[1]) & 0x7f;
    size_t at = 2;
    if (len == 126) {
      if (!read_at_least(fd, pending, 4, stopping)) return;
      len = (static_cast<unsigned char>(pending[2]) << 8) | static_cast<unsigned char>(pending[3]);
      at = 4;
    } else if (len == 127) {
      return;  // the tests send small frames only
    }
    size_t mask_at = at;
    if (masked) at += 4;
    if (!read_at_least(fd, pending, at + len, stopping)) return;
    std::string payload = pending.substr(at, len);
    if (masked)
      for (size_t i = 0; i < payload.size(); ++i) payload[i] ^= pending[mask_at + i % 4];
    pending.erase(0, at + len);
    if (opcode == 0x8) {
      send_all(fd, std::string("\x88\x00", 2));
      return;
    }
    if (opcode != 0x1) continue;
    std::string frame = "\x81";
    if (payload.size() < 126) {
      frame += static_cast<char>(payload.size());
    } else {
      frame += static_cast<char>(126);
      frame += static_cast<char>(payload.size() >> 8);
      frame += static_cast<char>(payload.size() & 0xff);
    }
    if (!send_all(fd, frame + payload)) return;
  }
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

// ---- tiny_upstream ---------------------------------------------------------------------------

tiny_upstream::tiny_upstream() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_fd_, 64) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    throw std::runtime_error("tiny_upstream: cannot listen");
  port_ = ntohs(a.sin_port);
  acceptor_ = std::thread([this] {
    while (!stopping_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      std::lock_guard<std::mutex> lock(mu_);
      threads_.emplace_back([this, fd] {
        serve(fd);
        ::close(fd);
      });
    }
  });
}

tiny_upstream::~tiny_upstream() {
  stopping_ = true;
  acceptor_.join();
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& t : threads_) t.join();
  ::close(listen_fd_);
}

void tiny_upstream::serve(int fd) {
  std::string bytes;
  size_t end;
  while ((end = bytes.find("\r\n\r\n")) == std::string::npos)
    if (!read_at_least(fd, bytes, bytes.size() + 1, stopping_)) return;
  std::string head = bytes.substr(0, end);
  std::string rest = bytes.substr(end + 4);
  std::string path = head.substr(head.find(' ') + 1);
  path = path.substr(0, path.find(' '));

  if (strcasecmp(header_value(head, "Upgrade").c_str(), "websocket") == 0) {
    std::string key = header_value(head, "Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    unsigned char sha[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(key.data()), key.size(), sha);
    if (!send_all(fd, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Accept: " + base64(sha, sizeof sha) + "\r\n\r\n"))
      return;
    websocket_echo(fd, rest, stopping_);
    return;
  }
  if (path == "/stream") {
    send_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
                 "Connection: close\r\n\r\n8\r\nchunk 1\n\r\n");
    for (int i = 0; i < 15 && !stopping_; ++i) std::this_thread::sleep_for(100ms);
    send_all(fd, "8\r\nchunk 2\n\r\n0\r\n\r\n");
    return;
  }
  std::string body = "upstream host=" + header_value(head, "Host") + " proto=" +
                     header_value(head, "X-Forwarded-Proto") + " path=" + path + "\n";
  send_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: " +
                   std::to_string(body.size()) + "\r\n\r\n" + body);
}

// ---- ask_server -----------------------------------------------------------------------------

struct ask_server::impl {
  httplib::Server srv;
  std::thread th;
  std::mutex mu;
  std::map<std::string, int> asked;
};

ask_server::ask_server(std::set<std::string> allowed) : impl_(std::make_unique<impl>()) {
  impl_->srv.Get("/ask", [this, allowed](const httplib::Request& req, httplib::Response& res) {
    auto domain = req.get_param_value("domain");
    {
      std::lock_guard<std::mutex> lock(impl_->mu);
      ++impl_->asked[domain];
    }
    res.status = allowed.count(domain) != 0 ? 200 : 404;
  });
  int p = impl_->srv.bind_to_any_port("127.0.0.1");
  if (p <= 0) throw std::runtime_error("ask_server: cannot listen");
  port_ = static_cast<uint16_t>(p);
  impl_->th = std::thread([this] { impl_->srv.listen_after_bind(); });
}

ask_server::~ask_server() {
  impl_->srv.stop();
  impl_->th.join();
}

std::set<std::string> ask_server::asked() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::set<std::string> names;
  for (auto& [name, n] : impl_->asked) names.insert(name);
  return names;
}

int ask_server::times_asked(const std::string& name) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->asked.find(name);
  return it == impl_->asked.end() ? 0 : it->second;
}

// ---- pebble_ca ------------------------------------------------------------------------------

namespace {
std::string pebble_script() { return std::string(BERTH_TEST_APPS) + "/../../scripts/pebble.sh"; }
}  // namespace

pebble_ca::pebble_ca(const std::string& dir, uint16_t http_port, uint16_t https_port, unsigned validity_s)
    : dir_(dir) {
  std::filesystem::create_directories(dir);
  std::vector<std::string> argv = {"/bin/bash", pebble_script(), "start", dir, std::to_string(http_port),
                                   std::to_string(https_port)};
  if (validity_s != 0) argv.push_back(std::to_string(validity_s));
  process p;
  p.start(argv, {}, dir + "/start.out");
  int rc = p.wait(60s);
  std::istringstream out(read_file(dir + "/start.out"));
  for (std::string line; std::getline(out, line);) {
    if (line.rfind("directory=", 0) == 0) directory = line.substr(10);
    if (line.rfind("ca=", 0) == 0) ca_file = line.substr(3);
    if (line.rfind("root=", 0) == 0) root_file = line.substr(5);
  }
  if (rc != 0 || directory.empty()) {
    directory.clear();
    skip_reason = read_file(dir + "/skip-reason");
    if (skip_reason.empty()) skip_reason = "pebble.sh start exited " + std::to_string(rc) + ": " + read_file(dir + "/start.out");
  }
}

pebble_ca::~pebble_ca() {
  process p;
  p.start({"/bin/bash", pebble_script(), "stop", dir_}, {}, dir_ + "/stop.out");
  if (p.wait(30s) == -1) p.kill9();
}

// ---- tls_front_process ----------------------------------------------------------------------

// SIGKILL: after an ACME order Caddy 2.6 takes seconds to stop gracefully, and nothing of a
// test's Caddy must outlive it anyway.
tls_front_process::~tls_front_process() {
  if (proc_.running()) proc_.kill9();
}

tls_front_settings tls_front_process::settings(const std::string& mode, uint16_t upstream_port,
                                               uint16_t ask_port) const {
  tls_front_settings s;
  s.mode = mode;
  s.listen_host = "127.0.0.1";
  // Two ports free at the same moment, distinct from each other and from the given ones.
  do {
    s.http_port = free_port();
    s.https_port = free_port();
  } while (s.http_port == s.https_port || s.http_port == upstream_port || s.https_port == upstream_port ||
           s.http_port == ask_port || s.https_port == ask_port);
  s.upstream_port = upstream_port;
  s.ask_port = ask_port;
  std::filesystem::create_directories(dir_ + "/admin");
  std::filesystem::permissions(dir_ + "/admin", std::filesystem::perms::owner_all);
  s.admin_socket = dir_ + "/admin/caddy.sock";
  s.storage_dir = dir_ + "/storage";
  return s;
}

bool tls_front_process::start(const tls_front_settings& s, std::string* error,
                              const std::function<void(nlohmann::json&)>& adjust) {
  auto checked = check_tls_front(s);
  if (!checked) {
    *error = checked.message();
    return false;
  }
  auto config = tls_front_config(s);
  if (adjust) adjust(config);
  write_file(dir_ + "/caddy.json", config.dump(2));
  // HOME/XDG in dir: nothing of Caddy's lands in the real home.
  proc_.start(tls_front_command(binary_, dir_ + "/caddy.json"),
              {{"HOME", dir_}, {"XDG_DATA_HOME", dir_ + "/xdg-data"}, {"XDG_CONFIG_HOME", dir_ + "/xdg-config"}},
              dir_ + "/caddy.log");
  auto ready = wait_admin_ready(s.admin_socket, 15s);
  auto listening = [&](uint16_t port) {
    int fd = connect_loopback(port);
    if (fd >= 0) ::close(fd);
    return fd >= 0;
  };
  if (!ready || !eventually([&] { return listening(s.http_port) && listening(s.https_port); }, 10s)) {
    *error = "caddy did not come up: " + (ready ? std::string("its ports do not answer") : ready.message()) +
             "\n" + log();
    return false;
  }
  return true;
}

void tls_front_process::kill() {
  if (proc_.running()) proc_.kill9();
}

std::string tls_front_process::log() const { return read_file(dir_ + "/caddy.log"); }

std::string caddy_binary() {
  for (const char* p : {"/usr/bin/caddy", "/usr/local/bin/caddy"})
    if (::access(p, X_OK) == 0) return p;
  return "";
}

}  // namespace berth::it
