#include "bench/common/scale_probe.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cmath>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>
#include <vector>

#include "bench/common/berth_bench.hpp"
#include "tests/common/support.hpp"

namespace berth::bench {

double rss_mb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) {
      long kb = 0;
      std::istringstream(line.substr(6)) >> kb;
      return kb / 1024.0;
    }
  return NAN;
}

double cpu_seconds(pid_t pid) {
  auto stat = berth::it::read_file("/proc/" + std::to_string(pid) + "/stat");
  // The command name may hold spaces and ')': fields are counted after the last ')'.
  auto close = stat.rfind(')');
  if (close == std::string::npos) return NAN;
  std::istringstream in(stat.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  // After ')': state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15)
  for (int i = 3; i <= 13 && in >> field; ++i) {
  }
  if (!(in >> utime >> stime)) return NAN;
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

double cpu_percent_over(pid_t pid, std::chrono::milliseconds window) {
  auto t0 = std::chrono::steady_clock::now();
  double c0 = cpu_seconds(pid);
  std::this_thread::sleep_for(window);
  double c1 = cpu_seconds(pid);
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return (c1 - c0) / wall * 100.0;
}

void for_each_concurrently(size_t n, int threads, const std::function<void(size_t, int)>& work) {
  std::atomic<size_t> next{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      for (size_t i = next++; i < n; i = next++) work(i, t);
    });
  for (auto& th : pool) th.join();
}

double wrk_latency_ms(const std::string& text) {
  static const std::regex re(R"(^([0-9.]+)(us|ms|s|m)$)");
  std::smatch m;
  if (!std::regex_match(text, m, re)) return NAN;
  double v = std::stod(m[1]);
  if (m[2] == "us") return v / 1000;
  if (m[2] == "ms") return v;
  if (m[2] == "s") return v * 1000;
  return v * 60000;
}

wrk_result run_wrk(const std::string& wrk, int threads, int connections, int seconds, const std::string& header,
                   const std::string& url, const std::string& log) {
  wrk_result r;
  std::remove(log.c_str());
  pid_t pid = spawn({wrk, "-t" + std::to_string(threads), "-c" + std::to_string(connections),
                     "-d" + std::to_string(seconds) + "s", "--latency", "-H", header, url},
                    log, &r.error);
  if (pid < 0) return r;
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  auto out = berth::it::read_file(log);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    r.error = "wrk failed: " + out.substr(0, 400);
    return r;
  }
  std::smatch m;
  static const std::regex rps(R"(Requests/sec:\s+([0-9.]+))");
  static const std::regex p99(R"(\n\s+99%\s+(\S+))");
  static const std::regex non2xx(R"(Non-2xx or 3xx responses:\s+(\d+))");
  static const std::regex sock(R"(Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+))");
  if (!std::regex_search(out, m, rps)) {
    r.error = "no Requests/sec in wrk's output: " + out.substr(0, 400);
    return r;
  }
  r.req_per_s = std::stod(m[1]);
  if (!std::regex_search(out, m, p99) || std::isnan(r.p99_ms = wrk_latency_ms(m[1]))) {
    r.error = "no 99% latency in wrk's output: " + out.substr(0, 400);
    return r;
  }
  if (std::regex_search(out, m, non2xx)) r.failed += std::stol(m[1]);
  if (std::regex_search(out, m, sock))
    for (int i = 1; i <= 4; ++i) r.failed += std::stol(m[i]);
  r.ok = true;
  return r;
}

}  // namespace berth::bench
