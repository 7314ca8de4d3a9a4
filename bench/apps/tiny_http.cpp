// tiny_http: the smallest fair app for bench_deploy. Plain sockets, one thread, no library.
//
//   tiny_http [VERSION-FILE]     (default: VERSION, relative to the working directory)
//
// Listens on $HOST (default 127.0.0.1) : $PORT, answers `GET /health` with 200 "ok" and any
// other path with 200 "release <X>\n", X being the first line of VERSION-FILE, read once at
// start. Every answer closes the connection. SIGTERM keeps its default action (immediate
// exit), so a stop costs no more than the kernel's work.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

namespace {

std::string read_version(const char* path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return "";
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
    line.pop_back();
  return line;
}

void write_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

void serve_one(int fd, const std::string& release_body) {
  timeval tv{1, 0};  // a silent client may hold us for at most a second
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  std::string req;
  char buf[4096];
  while (req.find("\r\n\r\n") == std::string::npos && req.size() < 16384) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    req.append(buf, static_cast<size_t>(n));
  }
  // "GET /path HTTP/1.1"
  std::string path = "/";
  auto sp1 = req.find(' ');
  if (sp1 != std::string::npos) {
    auto sp2 = req.find(' ', sp1 + 1);
    if (sp2 != std::string::npos) path = req.substr(sp1 + 1, sp2 - sp1 - 1);
  }
  auto q = path.find('?');
  if (q != std::string::npos) path.resize(q);
  const std::string body = path == "/health" ? std::string("ok") : release_body;
  std::string resp = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                     std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  write_all(fd, resp);
}

}  // namespace

int main(int argc, char** argv) {
  const char* version_file = argc > 1 ? argv[1] : "VERSION";
  const char* port_env = std::getenv("PORT");
  const char* host_env = std::getenv("HOST");
  if (port_env == nullptr) {
    std::fprintf(stderr, "tiny_http: PORT is not set\n");
    return 2;
  }
  int port = std::atoi(port_env);
  std::string host = host_env && *host_env ? host_env : "127.0.0.1";
  std::string version = read_version(version_file);
  if (version.empty()) {
    std::fprintf(stderr, "tiny_http: cannot read a version from %s\n", version_file);
    return 2;
  }
  const std::string release_body = "release " + version + "\n";
  ::signal(SIGPIPE, SIG_IGN);

  int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    std::fprintf(stderr, "tiny_http: bad HOST %s\n", host.c_str());
    return 2;
  }
  if (::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(lfd, 128) != 0) {
    std::fprintf(stderr, "tiny_http: cannot listen on %s:%d: %s\n", host.c_str(), port,
                 std::strerror(errno));
    return 1;
  }
  std::printf("tiny_http: release %s on %s:%d\n", version.c_str(), host.c_str(), port);
  std::fflush(stdout);
  for (;;) {
    int fd = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE) continue;
      std::fprintf(stderr, "tiny_http: accept: %s\n", std::strerror(errno));
      return 1;
    }
    serve_one(fd, release_body);
    ::close(fd);
  }
}
