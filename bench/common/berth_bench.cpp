#include "bench/common/berth_bench.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <sstream>

#include "tests/common/support.hpp"

extern char** environ;

namespace berth::bench {

std::string loadavg() {
  auto s = berth::it::read_file("/proc/loadavg");
  std::istringstream in(s);
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

// fork + execve, no shell; stdout/stderr to `log`; the child dies with us (PR_SET_PDEATHSIG).
// Its environment is ours without any BERTH_* variable.
pid_t spawn(const std::vector<std::string>& args, const std::string& log, std::string* error) {
  std::vector<std::string> envs;
  for (char** e = environ; e && *e; ++e)
    if (std::strncmp(*e, "BERTH_", 6) != 0) envs.push_back(*e);
  std::vector<char*> argv, envp;
  for (auto& s : args) argv.push_back(const_cast<char*>(s.c_str()));
  argv.push_back(nullptr);
  for (auto& s : envs) envp.push_back(const_cast<char*>(s.c_str()));
  envp.push_back(nullptr);
  int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd < 0 || null_fd < 0) {
    *error = "cannot open " + log;
    if (fd >= 0) ::close(fd);
    if (null_fd >= 0) ::close(null_fd);
    return -1;
  }
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    *error = std::string("fork: ") + std::strerror(errno);
    ::close(fd);
    ::close(null_fd);
    return -1;
  }
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    ::dup2(null_fd, 0);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(fd);
  ::close(null_fd);
  return pid;
}

uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0) return 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return 0;
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

api_client::api_client(uint16_t port) : cli("127.0.0.1", port) {
  cli.set_connection_timeout(2, 0);
  cli.set_read_timeout(15, 0);
  cli.set_write_timeout(10, 0);
  cli.set_keep_alive(true);
  cli.set_tcp_nodelay(true);
}

std::pair<int, json> api_client::get(const std::string& path) { return convert(cli.Get(path.c_str())); }

std::pair<int, json> api_client::post(const std::string& path, const json& body) {
  return convert(cli.Post(path.c_str(), body.dump(), "application/json"));
}

std::pair<int, json> api_client::convert(const httplib::Result& r) {
  if (!r) return {-1, json{{"transport_error", httplib::to_string(r.error())}}};
  auto j = json::parse(r->body, nullptr, false);
  if (j.is_discarded()) j = json{{"raw", r->body}};
  return {r->status, j};
}


double median(std::vector<double> v) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return std::isnan(x); }), v.end());
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace berth::bench
