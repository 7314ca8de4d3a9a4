#include "tests/integration/plain_http_support.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <chrono>

namespace berth::it {

namespace {

constexpr int kReadTimeoutMs = 2000;

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool send_all(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// Reads what is available within timeout_ms; 0 on EOF, -1 on error or timeout.
ssize_t read_some(int fd, std::string* into, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) return -1;
  char buf[16384];
  ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  if (n > 0) into->append(buf, static_cast<size_t>(n));
  return n;
}

// "name: value" lines after the first line of a head, names lowercase.
std::map<std::string, std::string> parse_headers(const std::string& head) {
  std::map<std::string, std::string> h;
  size_t at = head.find("\r\n");
  while (at != std::string::npos && at + 2 < head.size()) {
    size_t end = head.find("\r\n", at + 2);
    std::string line = head.substr(at + 2, end == std::string::npos ? std::string::npos : end - at - 2);
    auto colon = line.find(':');
    if (colon != std::string::npos) {
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      h[lower(line.substr(0, colon))] = value;
    }
    at = end;
  }
  return h;
}

}  // namespace

// ---- upstream ------------------------------------------------------------------------------

tiny_upstream::tiny_upstream(std::string name)
    : name_(std::move(name)), server_("tiny_upstream", [this](int fd) { serve(fd); }) {}

void tiny_upstream::serve(int fd) {
  std::string buf;
  while (true) {
    size_t end;
    while ((end = buf.find("\r\n\r\n")) == std::string::npos)
      if (read_some(fd, &buf, 60000) <= 0) return;
    auto headers = parse_headers(buf.substr(0, end + 2));
    buf.erase(0, end + 4);
    if (headers.count("upgrade")) {
      if (!send_all(fd, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " +
                            headers["upgrade"] + "\r\n\r\n"))
        return;
      while (true) {  // echo
        if (!buf.empty() && !send_all(fd, buf)) return;
        buf.clear();
        if (read_some(fd, &buf, 60000) <= 0) return;
      }
    }
    std::string body = name_ + "\n";
    bool close = lower(headers["connection"]) == "close";
    if (!send_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                          std::to_string(body.size()) + (close ? "\r\nConnection: close" : "") + "\r\n\r\n" + body) ||
        close)
      return;
  }
}

// ---- client --------------------------------------------------------------------------------

std::string plain_response::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? "" : it->second;
}

plain_connection::plain_connection(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0)
    fd_ = fd;
  else
    ::close(fd);
}

plain_connection::~plain_connection() {
  if (fd_ >= 0) ::close(fd_);
}

bool plain_connection::read_head(std::string* head, std::string* error, int wait_ms) {
  size_t end;
  while ((end = buffered_.find("\r\n\r\n")) == std::string::npos) {
    ssize_t n = read_some(fd_, &buffered_, wait_ms);
    if (n <= 0) {
      *error = n == 0 ? "closed before an answer" : "no answer in " + std::to_string(wait_ms) + " ms";
      return false;
    }
  }
  *head = buffered_.substr(0, end + 2);
  buffered_.erase(0, end + 4);
  return true;
}

plain_response plain_connection::get(const std::string& host, const std::string& path, int wait_ms) {
  plain_response r;
  if (fd_ < 0) return r.error = "not connected", r;
  if (!send_all(fd_, "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n")) return r.error = "send failed", r;
  std::string head;
  if (!read_head(&head, &r.error, wait_ms)) return r;
  r.headers = parse_headers(head);
  size_t length = std::stoul(r.header("content-length").empty() ? "0" : r.header("content-length"));
  while (buffered_.size() < length)
    if (read_some(fd_, &buffered_, kReadTimeoutMs) <= 0) return r.error = "body cut short", r;
  r.body = buffered_.substr(0, length);
  buffered_.erase(0, length);
  r.status = std::atoi(head.c_str() + head.find(' ') + 1);
  return r;
}

bool plain_connection::upgrade(const std::string& host, std::string* error) {
  if (fd_ < 0) return *error = "not connected", false;
  if (!send_all(fd_, "GET /tunnel HTTP/1.1\r\nHost: " + host + "\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n"))
    return *error = "send failed", false;
  std::string head;
  if (!read_head(&head, error)) return false;
  if (head.rfind("HTTP/1.1 101", 0) != 0) return *error = "answered: " + head.substr(0, head.find("\r\n")), false;
  return true;
}

bool plain_connection::echo(const std::string& text, std::string* error) {
  if (!send_all(fd_, text)) return *error = "send failed", false;
  while (buffered_.size() < text.size()) {
    ssize_t n = read_some(fd_, &buffered_, kReadTimeoutMs);
    if (n <= 0) return *error = n == 0 ? "tunnel closed" : "no echo in 2 s", false;
  }
  bool same = buffered_.substr(0, text.size()) == text;
  if (!same) *error = "echoed '" + buffered_ + "'";
  buffered_.erase(0, text.size());
  return same;
}

bool plain_connection::peer_closed() {
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  char c;
  return ::recv(fd_, &c, 1, MSG_PEEK) == 0;
}

}  // namespace berth::it
