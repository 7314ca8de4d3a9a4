#include "runtime/process/proc_stat.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

namespace berth::detail {

namespace {

// Fields as token indexes after the ')' that ends comm: index = field number - 3.
constexpr int kState = 0, kPgrp = 2, kUtime = 11, kStime = 12, kStart = 19, kRss = 21, kExit = 49;

bool read_small_file(const char* path, char* buf, size_t size, ssize_t* len) {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n;
  do n = ::read(fd, buf, size - 1);
  while (n < 0 && errno == EINTR);
  ::close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  *len = n;
  return true;
}

}  // namespace

std::optional<proc_stat> read_proc_stat(int pid) {
  if (pid <= 0) return std::nullopt;
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
  char buf[2048];
  ssize_t n = 0;
  if (!read_small_file(path, buf, sizeof buf, &n)) return std::nullopt;
  // comm (field 2) may contain spaces and parentheses: fields resume after the last ')'.
  char* p = static_cast<char*>(::memrchr(buf, ')', static_cast<size_t>(n)));
  if (!p) return std::nullopt;
  proc_stat st;
  int idx = 0;
  char* save = nullptr;
  for (char* tok = ::strtok_r(p + 1, " \n", &save); tok; tok = ::strtok_r(nullptr, " \n", &save), ++idx) {
    switch (idx) {
      case kState: st.state = tok[0]; break;
      case kPgrp: st.pgrp = std::atoi(tok); break;
      case kUtime: st.utime = std::strtoull(tok, nullptr, 10); break;
      case kStime: st.stime = std::strtoull(tok, nullptr, 10); break;
      case kStart: st.start_time = std::strtoull(tok, nullptr, 10); break;
      case kRss: st.rss_pages = std::strtoull(tok, nullptr, 10); break;
      case kExit: st.exit_code = std::atoi(tok); break;
      default: break;
    }
    if (idx == kExit) break;
  }
  if (idx <= kStart) return std::nullopt;
  return st;
}

bool is_dead_state(char s) { return s == 'Z' || s == 'X' || s == 'x'; }

void for_each_pid(const std::function<void(int)>& fn) {
  DIR* d = ::opendir("/proc");
  if (!d) return;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    fn(std::atoi(e->d_name));
  }
  ::closedir(d);
}

std::vector<int> scan_live_members(int pgid) {
  std::vector<int> out;
  for_each_pid([&](int pid) {
    if (is_live_member(pid, pgid)) out.push_back(pid);
  });
  return out;
}

bool is_live_member(int pid, int pgid) {
  auto st = read_proc_stat(pid);
  return st && st->pgrp == pgid && !is_dead_state(st->state);
}

// kill(-pgid, 0) counts zombies too; zombies of another parent (orphans waiting for init)
// are not ours to wait for, so /proc has the last word.
bool group_has_live_members(int pgid, std::vector<int>& known) {
  if (::kill(-pgid, 0) == -1 && errno == ESRCH) return false;
  for (int p : known)
    if (is_live_member(p, pgid)) return true;
  known = scan_live_members(pgid);
  return !known.empty();
}

std::string read_cwd(int pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/cwd", pid);
  char buf[4096];
  ssize_t n = ::readlink(path, buf, sizeof buf);
  if (n <= 0 || static_cast<size_t>(n) >= sizeof buf) return "";
  std::string cwd(buf, static_cast<size_t>(n));
  const std::string deleted = " (deleted)";
  if (cwd.size() > deleted.size() && cwd.compare(cwd.size() - deleted.size(), deleted.size(), deleted) == 0)
    cwd.resize(cwd.size() - deleted.size());
  return cwd;
}

bool path_is_under(const std::string& root, const std::string& path) {
  if (root.empty() || path.empty()) return false;
  return path == root || path.rfind(root + "/", 0) == 0;
}

int pidfd_open(int pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

void close_fd(int fd) {
  if (fd >= 0) ::close(fd);
}

void fill_from_wait_status(int ws, process_info* info) {
  info->status = process_status::exited;
  if (WIFEXITED(ws)) {
    info->exit_code = WEXITSTATUS(ws);
    info->term_signal = 0;
  } else if (WIFSIGNALED(ws)) {
    info->exit_code = -1;
    info->term_signal = WTERMSIG(ws);
  }
}

process_info inspect_via_proc(const process_handle& h) {
  process_info info;
  auto st = read_proc_stat(h.pid);
  if (!st || st->start_time != h.start_time) return info;  // not_found
  if (is_dead_state(st->state)) {
    info.status = process_status::exited;
    if (st->exit_code >= 0) fill_from_wait_status(st->exit_code, &info);
    return info;
  }
  info.status = process_status::running;
  return info;
}

}  // namespace berth::detail
