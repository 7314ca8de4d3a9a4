// process_driver: inspect, wait, stop, run, watch and usage. start() is in spawn.cpp, tail()
// in log_tail.cpp; the children table and the reaper thread in reaper*.cpp.
#include "runtime/process/process_driver.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <thread>

#include <fmt/format.h>

#include "runtime/process/proc_stat.hpp"
#include "runtime/process/reaper.hpp"

#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

namespace berth {

using namespace detail;
using clock_type = std::chrono::steady_clock;

const char* to_string(process_status s) {
  switch (s) {
    case process_status::running: return "running";
    case process_status::exited: return "exited";
    case process_status::not_found: return "not_found";
  }
  return "unknown";
}

namespace {

constexpr auto kKillWait = std::chrono::milliseconds(5000);  // bound after SIGKILL
constexpr auto kPollPeriod = std::chrono::milliseconds(10);  // /proc polling without pidfds

// Signals the process of h, never another process that reuses its pid. False if it is gone.
bool signal_process(const process_handle& h, int sig) {
  auto r = reaper::get().signal(h, sig);
  if (r != reaper::liveness::not_child) return r == reaper::liveness::alive;
  int fd = pidfd_open(h.pid);  // pins the process while we check it is the one of h
  auto st = read_proc_stat(h.pid);
  bool ok = st && st->start_time == h.start_time && !is_dead_state(st->state);
  if (ok && fd >= 0) ::syscall(SYS_pidfd_send_signal, fd, sig, nullptr, 0);
  else if (ok) ::kill(h.pid, sig);
  close_fd(fd);
  return ok;
}

bool leader_alive(const process_handle& h) {
  auto r = reaper::get().alive(h);
  if (r != reaper::liveness::not_child) return r == reaper::liveness::alive;
  return inspect_via_proc(h).status == process_status::running;
}

// Not our child (adopted after a restart): a pidfd if possible, else /proc every 10 ms.
process_info wait_foreign(const process_handle& h, clock_type::time_point deadline) {
  int fd = pidfd_open(h.pid);
  process_info info = inspect_via_proc(h);  // after the pidfd pinned the pid
  while (info.status == process_status::running && clock_type::now() < deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
    if (fd < 0) {
      std::this_thread::sleep_for(std::min(left + std::chrono::milliseconds(1), kPollPeriod));
      info = inspect_via_proc(h);
      continue;
    }
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left.count() + 1, 1 << 30)));
    if (r < 0 && errno == EINTR) continue;
    info = inspect_via_proc(h);
    if (r != 0) break;  // it ended (or poll failed): never spin on a readable pidfd
  }
  close_fd(fd);
  return info;
}

// Sleeps with a growing nap until nothing of the group is alive or the deadline passes.
template <class Alive>
bool wait_gone(Alive&& anything_alive, clock_type::time_point deadline) {
  auto nap = std::chrono::milliseconds(1);
  for (;;) {
    if (!anything_alive()) return true;
    auto now = clock_type::now();
    if (now >= deadline) return false;
    std::this_thread::sleep_for(std::min<clock_type::duration>(nap, deadline - now));
    nap = std::min(nap * 2, std::chrono::milliseconds(20));
  }
}

}  // namespace

process_info process_driver::inspect(const process_handle& h) const {
  process_info info;
  if (h.pid <= 0) return info;
  if (reaper::get().inspect(h, &info)) return info;
  return inspect_via_proc(h);
}

bool process_driver::is_ours(const process_handle& h) const {
  auto st = read_proc_stat(h.pid);
  return st && st->start_time == h.start_time;
}

process_info process_driver::wait(const process_handle& h, std::chrono::milliseconds timeout) const {
  process_info info;
  if (h.pid <= 0) return info;
  const auto deadline = clock_type::now() + std::max(timeout, std::chrono::milliseconds(0));
  if (reaper::get().wait(h, deadline, &info)) return info;
  return wait_foreign(h, deadline);
}

status process_driver::stop(const process_handle& h, std::chrono::milliseconds grace) {
  if (h.pid <= 0) return status::invalid_argument("stop: no pid");
  const int pgid = h.pgid > 0 ? h.pgid : h.pid;
  if (pgid == 1) return status::invalid_argument("stop: process group 1");  // kill(-1) = everyone
  if (auto st = read_proc_stat(h.pid); st && st->start_time != h.start_time)
    return status::ok();  // the pid belongs to another process now: ours is long gone

  auto& reg = reaper::get();
  // Only a group created by start() here may hold children of ours; never waitpid() in the
  // group of a process we did not start (it may be someone else's child).
  const bool our_group = reg.alive(h) != reaper::liveness::not_child;
  std::vector<int> known;
  auto anything_alive = [&] {
    if (our_group) reg.reap_group(pgid);
    bool leader = leader_alive(h);
    return group_has_live_members(pgid, known) || leader;
  };
  auto send = [&](int sig) {
    ::kill(-pgid, sig);
    signal_process(h, sig);  // the leader too, should it have left its group
  };

  if (!anything_alive()) return status::ok();
  send(SIGTERM);
  if (grace.count() > 0 && wait_gone(anything_alive, clock_type::now() + grace)) return status::ok();
  send(SIGKILL);
  if (wait_gone(anything_alive, clock_type::now() + kKillWait)) return status::ok();
  return status::io_error(fmt::format("stop {}: process group {} still alive after SIGKILL", h.pid, pgid));
}

status process_driver::run(const process_spec& spec, std::chrono::milliseconds timeout, int* exit_code,
                           bool* timed_out, std::chrono::milliseconds kill_grace,
                           const std::function<bool()>& cancelled) {
  if (timed_out) *timed_out = false;
  if (exit_code) *exit_code = -1;
  process_handle h;
  if (auto s = start(spec, &h); !s) return s;
  auto deadline = clock_type::now() + timeout;
  process_info info;
  for (;;) {  // waits in slices so that a cancel is seen within 100 ms
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
    auto slice = cancelled ? std::min(left, std::chrono::milliseconds(100)) : left;
    info = wait(h, std::max(std::chrono::milliseconds(0), slice));
    if (info.status != process_status::running || left.count() <= 0) break;
    if (cancelled && cancelled()) {
      stop(h, kill_grace);
      return status::io_error(fmt::format("cancelled: {} was stopped", spec.argv[0]));
    }
  }
  if (info.status == process_status::running) {
    stop(h, kill_grace);
    if (timed_out) *timed_out = true;
    return status::io_error(fmt::format("timeout: {} still running after {} ms", spec.argv[0], timeout.count()));
  }
  // Stray background children left in the group by a finished command.
  std::vector<int> known;
  if (group_has_live_members(h.pgid, known)) stop(h, kill_grace);
  if (exit_code) *exit_code = info.term_signal > 0 ? 128 + info.term_signal : info.exit_code;
  return status::ok();
}

uint64_t process_driver::watch(const process_handle& h, std::function<void(const process_info&)> on_exit) {
  return reaper::get().watch(h, std::move(on_exit));
}

void process_driver::unwatch(uint64_t token) { reaper::get().unwatch(token); }

status process_driver::usage(const process_handle& h, double* cpu_seconds, uint64_t* rss_bytes,
                             uint32_t* processes) const {
  if (inspect(h).status != process_status::running)
    return status::not_found(fmt::format("usage: process {} is not running", h.pid));
  const int pgid = h.pgid > 0 ? h.pgid : h.pid;
  std::vector<int> members = scan_live_members(pgid);
  if (std::find(members.begin(), members.end(), h.pid) == members.end()) members.push_back(h.pid);
  static const long ticks = std::max(1L, ::sysconf(_SC_CLK_TCK));
  static const long page = std::max(1L, ::sysconf(_SC_PAGESIZE));
  uint64_t cpu_ticks = 0, rss_pages = 0;
  uint32_t count = 0;
  for (int pid : members) {
    auto st = read_proc_stat(pid);
    if (!st || is_dead_state(st->state)) continue;  // ended since the scan
    if (pid == h.pid && st->start_time != h.start_time) continue;
    cpu_ticks += st->utime + st->stime;
    rss_pages += st->rss_pages;
    ++count;
  }
  if (cpu_seconds) *cpu_seconds = static_cast<double>(cpu_ticks) / static_cast<double>(ticks);
  if (rss_bytes) *rss_bytes = rss_pages * static_cast<uint64_t>(page);
  if (processes) *processes = count;
  return status::ok();
}

}  // namespace berth
