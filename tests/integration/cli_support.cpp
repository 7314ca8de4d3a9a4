#include "tests/integration/cli_support.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ctime>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <catch2/catch.hpp>
#include <fmt/format.h>

extern char** environ;

namespace berth::it {

env_list cli_env(const server& srv) {
  return {{"BERTH_URL", "http://127.0.0.1:" + std::to_string(srv.port())}, {"BERTH_TOKEN", srv.token()}};
}

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

int decode(int st) { return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1; }

}  // namespace

run_result run_cli(const std::vector<std::string>& args, const env_list& env, const std::string& stdin_text,
                   std::chrono::milliseconds timeout) {
  std::vector<std::string> argv{berth_binary};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_program(argv, env, stdin_text, timeout);
}

run_result run_program(const std::vector<std::string>& args, const env_list& env, const std::string& stdin_text,
                       std::chrono::milliseconds timeout) {
  temp_dir io;
  auto in_path = io / "stdin", out_path = io / "stdout", err_path = io / "stderr";
  std::ofstream(in_path, std::ios::binary) << stdin_text;

  // Everything the child needs is built before fork: it only dup2s and execs.
  std::vector<std::string> argv_s = args, env_s;
  for (char** e = environ; *e; ++e)
    if (std::string(*e).rfind("BERTH_", 0) != 0) env_s.push_back(*e);
  for (auto& [k, v] : env) env_s.push_back(k + "=" + v);
  std::vector<char*> argv, envp;
  for (auto& a : argv_s) argv.push_back(a.data());
  for (auto& e : env_s) envp.push_back(e.data());
  argv.push_back(nullptr);
  envp.push_back(nullptr);
  int in_fd = ::open(in_path.c_str(), O_RDONLY | O_CLOEXEC);
  int out_fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int err_fd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (in_fd < 0 || out_fd < 0 || err_fd < 0) throw std::runtime_error("cannot create the capture files");
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(in_fd, 0);
    ::dup2(out_fd, 1);
    ::dup2(err_fd, 2);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(in_fd);
  ::close(out_fd);
  ::close(err_fd);
  if (pid < 0) throw std::runtime_error("fork failed");

  run_result res;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int st = 0;
  for (;;) {
    pid_t r = ::waitpid(pid, &st, WNOHANG);
    if (r == pid) {
      res.exit_code = decode(st);
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &st, 0);
      res.timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  res.out = slurp(out_path);
  res.err = slurp(err_path);
  return res;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

std::vector<json> json_lines(const run_result& r) {
  std::vector<json> out;
  for (auto& line : lines_of(r.out)) {
    auto j = json::parse(line, nullptr, false);
    INFO(line);
    REQUIRE(j.is_object());
    out.push_back(j);
  }
  return out;
}

std::string current_release(server& srv, const std::string& name) {
  auto r = srv.api().get("/api/projects/" + name + "/production");
  REQUIRE(r.status == 200);
  return r.body.value("current", json()).is_string() ? r.body["current"].get<std::string>() : "";
}

void each_once(const std::string& text, const std::vector<std::string>& lines) {
  for (auto& line : lines) {
    INFO(line);
    auto first = text.find(line);
    CHECK(first != std::string::npos);
    if (first != std::string::npos) CHECK(text.find(line, first + 1) == std::string::npos);
  }
}

std::vector<std::string> numbered_lines(const std::string& tag, int from, int to) {
  std::vector<std::string> out;
  for (int i = from; i < to; ++i) out.push_back(fmt::format("{} {:06d}\n", tag, i));
  return out;
}

std::string iso_now() {
  auto now = std::chrono::system_clock::now();
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(us / 1000000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:06d}Z", buf, us % 1000000);
}

}  // namespace berth::it
