#include "tests/integration/tls_support.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <sstream>

#include <httplib.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "runtime/proxy/caddy.hpp"
#include "tests/integration/deploy_support.hpp"

namespace berth::it {

using namespace std::chrono_literals;

namespace {

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

// ---- front_upstream ---------------------------------------------------------------------------

front_upstream::front_upstream() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_fd_, 64) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    throw std::runtime_error("front_upstream: cannot listen");
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

front_upstream::~front_upstream() {
  stopping_ = true;
  acceptor_.join();
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& t : threads_) t.join();
  ::close(listen_fd_);
}

void front_upstream::serve(int fd) {
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
    for (int i = 0; i < 200 && !stopping_ && !streams_released_; ++i) std::this_thread::sleep_for(50ms);
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
