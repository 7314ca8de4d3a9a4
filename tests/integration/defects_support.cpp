#include "tests/integration/defects_support.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace berth::it {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

std::string find_program(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = std::string(path ? path : "") + ":/usr/bin:/bin:/usr/local/bin";
  for (size_t start = 0; start <= dirs.size();) {
    auto end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    if (end > start) {
      auto candidate = dirs.substr(start, end - start) + "/" + name;
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    start = end + 1;
  }
  return "";
}

std::vector<std::string> proxy_args(uint16_t http_port) {
  return {"--switch-mode", "proxy", "--caddy", caddy_binary(), "--proxy-http-port", std::to_string(http_port),
          "--drain-ms", "300"};
}

std::vector<json> replay_events(const std::string& data_dir) {
  auto r = run({"audit", "replay", "--data", data_dir, "--json"});
  auto out = json::parse(r.out, nullptr, false);
  if (r.exit_code != 0 || !out.is_object() || !out.contains("events") || !out["events"].is_array())
    throw std::runtime_error("audit replay failed: " + r.describe());
  return out["events"].get<std::vector<json>>();
}

std::string describe_events(const std::vector<json>& events, const std::vector<std::string>& streams) {
  std::ostringstream s;
  for (auto& e : events) {
    auto stream = e.value("stream", "");
    for (auto& want : streams)
      if (stream == want) {
        s << "\n  " << e.value("seq", 0) << " " << stream << " " << e.value("type", "") << " "
          << e.value("data", json()).dump();
        break;
      }
  }
  return s.str();
}

int thread_count(pid_t pid) {
  auto tasks = list_dir("/proc/" + std::to_string(pid) + "/task");
  return tasks.empty() ? -1 : static_cast<int>(tasks.size());
}

int threads_at_rest(pid_t pid, std::chrono::milliseconds settle, std::chrono::milliseconds limit) {
  auto until = steady::now() + limit;
  int lowest = thread_count(pid);
  auto lowest_since = steady::now();
  while (steady::now() < until && steady::now() - lowest_since < settle) {
    std::this_thread::sleep_for(100ms);
    int n = thread_count(pid);
    if (n >= 0 && n < lowest) {
      lowest = n;
      lowest_since = steady::now();
    }
  }
  return lowest;
}

uint64_t start_time_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return 0;
  auto rp = line.rfind(')');
  if (rp == std::string::npos) return 0;
  std::istringstream rest(line.substr(rp + 2));  // from field 3 (state) on
  std::string field;
  for (int i = 3; i <= 22 && rest >> field; ++i)
    if (i == 22) return std::stoull(field);
  return 0;
}

int run_program(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  temp_dir logs;
  process p;
  p.start(argv, {}, logs / "output");
  int code = p.wait(timeout);
  if (code == -1) p.kill9();
  return code;
}

void session_process::start(const std::vector<std::string>& argv, const env_list& env, const std::string& cwd,
                            const std::string& log) {
  std::vector<std::string> envs;
  for (auto& [k, v] : env) envs.push_back(k + "=" + v);
  std::vector<char*> args, envp;
  for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (auto& e : envs) envp.push_back(e.data());
  envp.push_back(nullptr);
  int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot open " + log);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(std::string("fork failed: ") + std::strerror(errno));
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // dies with the test binary
    if (::getppid() != parent) ::_exit(127);
    ::setsid();
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) ::dup2(null_fd, 0);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    if (::chdir(cwd.c_str()) != 0) ::_exit(126);
    ::execve(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  ::close(fd);
  pid_ = pid;
}

session_process::~session_process() {
  if (pid_ <= 0) return;
  ::kill(-pid_, SIGKILL);
  int st = 0;
  while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace berth::it
