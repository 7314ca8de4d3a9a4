// Caddy's admin API is berth's alone (issue 13, item 3): it listens only on a unix socket in a
// 0700 folder of the data dir, never on a TCP port, and GET /health (no token needed) names
// neither an admin address nor a pid. Checked against a real `berth serve` and a real Caddy.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <catch2/catch.hpp>

#include "tests/integration/deploy_support.hpp"
#include "tests/integration/harness.hpp"

using namespace berth::it;
using namespace std::chrono_literals;

namespace {

std::string caddy_on_path() {
  for (const char* p : {"/usr/bin/caddy", "/usr/local/bin/caddy"})
    if (::access(p, X_OK) == 0) return p;
  return "";
}

// The Caddy berth runs for `data` (its cwd is <data>/proxy); 0 when none.
pid_t caddy_of(const std::string& data) {
  for (auto& p : procs_in(data + "/proxy"))
    if (read_file("/proc/" + std::to_string(p.pid) + "/comm").rfind("caddy", 0) == 0) return p.pid;
  return 0;
}

// TCP ports `pid` listens on: its socket inodes matched against /proc/<pid>/net/tcp{,6} in LISTEN.
std::set<uint16_t> tcp_listen_ports(pid_t pid) {
  std::set<std::string> inodes;
  auto fd_dir = "/proc/" + std::to_string(pid) + "/fd";
  for (auto& e : std::filesystem::directory_iterator(fd_dir)) {
    std::error_code ec;
    auto target = std::filesystem::read_symlink(e.path(), ec).string();
    if (!ec && target.rfind("socket:[", 0) == 0) inodes.insert(target.substr(8, target.size() - 9));
  }
  std::set<uint16_t> ports;
  for (const char* table : {"tcp", "tcp6"}) {
    std::istringstream in(read_file("/proc/" + std::to_string(pid) + "/net/" + table));
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream f(line);
      std::string sl, local, remote, st, queues, tr, retr, uid, timeout, inode;
      f >> sl >> local >> remote >> st >> queues >> tr >> retr >> uid >> timeout >> inode;
      if (st != "0A" || inodes.count(inode) == 0) continue;  // 0A: LISTEN
      ports.insert(static_cast<uint16_t>(std::stoul(local.substr(local.rfind(':') + 1), nullptr, 16)));
    }
  }
  return ports;
}

// connect() to a unix socket as `uid` (a forked child drops to it); 0 or the errno.
int connect_as(const std::string& path, uid_t uid) {
  pid_t child = ::fork();
  if (child == 0) {
    if (uid != ::geteuid() && (::setgid(uid) != 0 || ::setuid(uid) != 0)) ::_exit(250);
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::_exit(rc == 0 ? 0 : errno);
  }
  int st = 0;
  ::waitpid(child, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

}  // namespace

TEST_CASE("caddy admin - only on a private unix socket: no TCP admin port, nothing about it in /health",
          "[integration][proxy][isolation]") {
  auto caddy = caddy_on_path();
  if (caddy.empty()) {
    WARN("caddy is not installed: skipped");
    return;
  }
  temp_dir tmp;
  uint16_t http_port = free_port();
  server srv(tmp.path(), deploy_server_options({"--switch-mode", "proxy", "--proxy-engine", "caddy", "--caddy", caddy, "--proxy-http-port",
                                                std::to_string(http_port)}));
  json proxy;
  REQUIRE(eventually([&] {
    proxy = srv.health().at("proxy");
    return proxy.value("status", "") == "running";
  }, 15s));

  // /health is unauthenticated: no admin address, no pid, no path of the data dir.
  INFO("proxy: " << proxy.dump());
  CHECK_FALSE(proxy.contains("admin_port"));
  CHECK_FALSE(proxy.contains("pid"));
  auto whole = srv.health().dump();
  CHECK(whole.find("admin") == std::string::npos);
  CHECK(whole.find(srv.data_dir()) == std::string::npos);

  // Caddy listens on TCP for the sites only.
  pid_t pid = caddy_of(srv.data_dir());
  REQUIRE(pid > 0);
  auto ports = tcp_listen_ports(pid);
  INFO("caddy pid " << pid << " listens on " << ports.size() << " TCP ports");
  CHECK(ports == std::set<uint16_t>{http_port});

  // Its admin API: a socket in a folder only berth's user may enter.
  auto dir = srv.data_dir() + "/proxy/admin";
  struct stat st {};
  REQUIRE(::stat(dir.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0700);
  CHECK(st.st_uid == ::geteuid());
  auto sock = dir + "/caddy.sock";
  REQUIRE(::stat(sock.c_str(), &st) == 0);
  CHECK(S_ISSOCK(st.st_mode));
  CHECK(connect_as(sock, ::geteuid()) == 0);  // it is live (berth's user reaches it)
  if (::geteuid() == 0) CHECK(connect_as(sock, 65534) == EACCES);  // nobody else does
}
