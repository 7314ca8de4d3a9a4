#include "tests/integration/haproxy_support.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <thread>

namespace berth::it {

using namespace std::chrono_literals;

std::string haproxy_binary() {
  for (const char* p : {"/usr/sbin/haproxy", "/usr/bin/haproxy", "/usr/local/sbin/haproxy"})
    if (::access(p, X_OK) == 0) return p;
  return "";
}

namespace {

// In the child: output to `log`, then exec argv (exit 127 when it cannot).
[[noreturn]] void exec_logged(const std::vector<std::string>& argv, const std::string& log) {
  int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  ::dup2(fd, 1);
  ::dup2(fd, 2);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  ::execv(args[0], args.data());
  ::_exit(127);
}

}  // namespace

int run_to_end(const std::vector<std::string>& argv, const std::string& log) {
  pid_t pid = ::fork();
  if (pid == 0) exec_logged(argv, log);
  int st = 0;
  ::waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

haproxy_process::haproxy_process(const std::string& binary, const std::string& dir) : log_(dir + "/haproxy.log") {
  auto argv = haproxy_command(binary, dir);
  pid_ = ::fork();
  if (pid_ == 0) {
    ::setsid();
    if (::chdir(dir.c_str()) != 0) ::_exit(126);
    exec_logged(argv, log_);
  }
}

haproxy_process::~haproxy_process() {
  ::kill(-pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
}

proxy_route route(const std::string& project, const std::string& host, uint16_t listen, uint16_t upstream,
                  std::vector<std::string> domains) {
  proxy_route r;
  r.id = project + "-production";
  r.project = project;
  r.host = host;
  r.listen_port = listen;
  r.upstream_port = upstream;
  r.domains = std::move(domains);
  return r;
}

router_fixture::router_fixture(std::vector<proxy_route> routes, bool with_ask) {
  struct stat st {};
  REQUIRE(::stat(tmp.path().c_str(), &st) == 0);
  REQUIRE((st.st_mode & 0777) == 0700);
  layout.dir = tmp.path();
  layout.http_port = free_port();
  if (with_ask) layout.ask_port = free_port();
  layout.routes = std::move(routes);
  REQUIRE(check_router_layout(layout));
  REQUIRE(write_router_files(layout));
  proc = std::make_unique<haproxy_process>(haproxy_binary(), layout.dir);
  admin = std::make_unique<haproxy_admin>(layout.dir);
  auto ready = wait_router_ready(layout.dir, 10s);
  INFO(ready.message() << "\n" << proc->log());
  REQUIRE(ready);
}

status router_fixture::sync() { return admin->sync_maps(maps_of(layout)); }

std::vector<int> router_fixture::workers() {
  std::vector<int> pids;
  REQUIRE(admin->workers(&pids));
  return pids;
}

// ---- answering_upstream -------------------------------------------------------------------

answering_upstream::answering_upstream(std::string name, int status, std::chrono::milliseconds delay)
    : name_(std::move(name)),
      status_(status),
      delay_(delay),
      server_("answering_upstream", [this](int fd) { serve(fd); }) {}

void answering_upstream::serve(int fd) {
  std::string buf;
  auto read_more = [&] {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 60000) <= 0) return false;
    char chunk[16384];
    ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buf.append(chunk, static_cast<size_t>(n));
    return true;
  };
  while (true) {
    size_t end;
    while ((end = buf.find("\r\n\r\n")) == std::string::npos)
      if (!read_more()) return;
    std::string head = buf.substr(0, end + 2);
    for (auto& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    size_t length = 0, at = head.find("\r\ncontent-length:");
    if (at != std::string::npos) length = std::strtoul(head.c_str() + at + 17, nullptr, 10);
    buf.erase(0, end + 4);
    while (buf.size() < length)
      if (!read_more()) return;
    buf.erase(0, length);
    std::this_thread::sleep_for(delay_);
    if (status_ == 0) {
      linger reset{1, 0};  // close() sends RST
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
      return;
    }
    std::string body = name_ + "\n";
    std::string answer = "HTTP/1.1 " + std::to_string(status_) + " X\r\nContent-Type: text/plain\r\nContent-Length: " +
                         std::to_string(body.size()) + "\r\n\r\n" + body;
    if (::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(answer.size())) return;
    ++answered_;
  }
}

// ---- runtime API ---------------------------------------------------------------------------

std::string runtime_command(const std::string& socket, const std::string& command) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket.c_str());
  std::string answer;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    std::string line = command + "\n";
    if (::send(fd, line.data(), line.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(line.size())) {
      ::shutdown(fd, SHUT_WR);  // the master CLI answers until our EOF
      char chunk[16384];
      pollfd p{fd, POLLIN, 0};
      while (::poll(&p, 1, 5000) > 0) {
        ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
        if (n <= 0) break;
        answer.append(chunk, static_cast<size_t>(n));
      }
    }
  }
  ::close(fd);
  return answer;
}

long master_reloads(const std::string& dir) {
  // "<pid> master <reloads> [failed: N] <uptime> <version>"
  auto text = runtime_command(dir + "/master.sock", "show proc");
  auto at = text.find(" master ");
  if (at == std::string::npos) return -1;
  return std::strtol(text.c_str() + at + 8, nullptr, 10);
}

long dropped_logs(const std::string& dir) {
  auto text = runtime_command(dir + "/admin.sock", "show info");
  auto at = text.find("\nDroppedLogs: ");
  return at == std::string::npos ? -1 : std::strtol(text.c_str() + at + 14, nullptr, 10);
}

// ---- clients -------------------------------------------------------------------------------

plain_response get_once(uint16_t port, const std::string& host, const std::string& path) {
  plain_connection c(port);
  return c.get(host, path);
}

std::string body_of(const plain_response& r) { return r.status < 0 ? "<" + r.error + ">" : r.body; }

}  // namespace berth::it
