// Helpers shared by the unit tests: temp folders, small file I/O, the event log.
#pragma once
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "runtime/eventlog/event_log.hpp"
#include "runtime/files/fs_util.hpp"

namespace berth::test {

namespace fs = std::filesystem;

// A fresh folder under /tmp, removed with everything in it (read-only folders too).
struct temp_dir {
  fs::path path;
  explicit temp_dir(const std::string& tag = "berth") {
    std::string tmpl = "/tmp/" + tag + "-XXXXXX";
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~temp_dir() { fsutil::force_remove(path); }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

inline void write_file(const fs::path& p, const std::string& content, mode_t mode = 0644) {
  if (p.has_parent_path()) fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary | std::ios::trunc) << content;
  ::chmod(p.c_str(), mode);
}

inline std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Permission bits (with setuid/setgid/sticky) of p itself, not of a link's target.
inline mode_t mode_of(const fs::path& p) {
  struct stat st;
  REQUIRE(::lstat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

// Fields of /proc/<pid>/stat the process tests look at (after the command's last ')').
struct stat_fields {
  char state = '?';
  int ppid = 0;
  int pgrp = 0;
  uint64_t start_time = 0;  // field 22
};

inline bool read_stat(int pid, stat_fields* out) {
  std::string s = read_file("/proc/" + std::to_string(pid) + "/stat");
  auto close = s.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream in(s.substr(close + 2));
  std::vector<std::string> f;
  std::string tok;
  while (in >> tok) f.push_back(tok);
  if (f.size() < 20) return false;
  *out = stat_fields{f[0][0], std::stoi(f[1]), std::stoi(f[2]), std::stoull(f[19])};
  return true;
}

// The event log in `dir`, opened (the test fails here when it cannot be).
inline std::unique_ptr<event_log> open_log(const std::string& dir,
                                           event_log::mode m = event_log::mode::read_write) {
  std::unique_ptr<event_log> log;
  auto st = event_log::open(dir, m, &log);
  INFO(st.message());
  REQUIRE(st.is_ok());
  return log;
}

}  // namespace berth::test
