#include "runtime/logs/rotated_log.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "runtime/logs/rotating_file.hpp"

namespace berth {

namespace {

constexpr int max_rotations = 1000;  // --log-max-files' bound
constexpr int snapshot_attempts = 200;

std::shared_ptr<int> open_fd(const std::string& path, struct stat* st) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return nullptr;
  if (::fstat(fd, st) != 0) {
    ::close(fd);
    return nullptr;
  }
  return std::shared_ptr<int>(new int(fd), [](int* p) {
    ::close(*p);
    delete p;
  });
}

size_t pread_all(int fd, char* into, size_t n, uint64_t at) {
  size_t got = 0;
  while (got < n) {
    auto r = ::pread(fd, into + got, n - got, static_cast<off_t>(at + got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  return got;
}

uint64_t inode_at(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_ino) : 0;
}

}  // namespace

std::string base_name(const std::string& path) { return path + ".base"; }

std::optional<log_base> read_log_base(const std::string& path) {
  std::ifstream in(base_name(path));
  log_base b;
  if (!(in >> b.offset >> b.inode)) return std::nullopt;
  return b;
}

status write_log_base(const std::string& path, log_base b) {
  auto final_name = base_name(path);
  auto tmp = final_name + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << b.offset << ' ' << b.inode << '\n';
    if (!out.flush()) return status::io_error("write " + tmp);
  }
  if (::rename(tmp.c_str(), final_name.c_str()) != 0)
    return status::io_error(fmt::format("rename {}: {}", tmp, std::strerror(errno)));
  return status::ok();
}

void remove_rotated_log(const std::string& path) {
  for (int i = max_rotations; i >= 0; --i) ::unlink(rotated_name(path, i).c_str());
  ::unlink(base_name(path).c_str());
  ::unlink((base_name(path) + ".tmp").c_str());
}

bool rotated_log_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 || ::stat(rotated_name(path, 1).c_str(), &st) == 0 ||
         ::stat(base_name(path).c_str(), &st) == 0;
}

// Optimistic: base, files, then base and PATH's inode again; a rotation in between changes
// one of them (the writer renames first and replaces the sidecar last), so the view is retried.
log_snapshot log_snapshot::take(const std::string& path) {
  log_snapshot snap;
  for (int attempt = 0; attempt < snapshot_attempts; ++attempt) {
    snap = log_snapshot{};
    auto before = read_log_base(path);
    struct stat st {};
    std::vector<file> newest_first;
    auto fd = open_fd(path, &st);
    uint64_t ino = fd ? static_cast<uint64_t>(st.st_ino) : 0;
    if (fd) newest_first.push_back({fd, 0, static_cast<uint64_t>(st.st_size)});
    bool mid_rotation = before && before->inode != 0 && fd && before->inode != ino;
    std::set<uint64_t> seen{ino};
    for (int i = 1; !mid_rotation && i <= max_rotations; ++i) {
      struct stat rs {};
      auto rfd = open_fd(rotated_name(path, i), &rs);
      if (!rfd) break;
      auto rino = static_cast<uint64_t>(rs.st_ino);
      // PATH just became PATH.1 (and its successor may not exist yet): the sidecar is stale.
      if ((fd && rino == ino) || (before && before->inode != 0 && rino == before->inode)) mid_rotation = true;
      // The renames move each file up one place, oldest first: a file seen twice moved under
      // us (a file missing ends the chain, and what was seen is still consistent).
      if (!seen.insert(rino).second) mid_rotation = true;
      newest_first.push_back({rfd, 0, static_cast<uint64_t>(rs.st_size)});
    }
    if (mid_rotation || read_log_base(path) != before || (fd && inode_at(path) != ino)) {
      std::this_thread::sleep_for(std::chrono::microseconds(200 * (attempt % 10 + 1)));
      continue;
    }
    if (!fd) newest_first.insert(newest_first.begin(), file{nullptr, 0, 0});  // PATH not made yet
    if (before) {
      // Downward from the sidecar; a file that would start before 0 does not belong (dropped).
      uint64_t base = before->offset;
      newest_first[0].base = base;
      for (size_t i = 1; i < newest_first.size(); ++i) {
        if (newest_first[i].size > base) {
          newest_first.resize(i);
          break;
        }
        base -= newest_first[i].size;
        newest_first[i].base = base;
      }
    } else {
      // No sidecar (written before sidecars): the oldest kept file counts as the beginning.
      uint64_t base = 0;
      for (auto it = newest_first.rbegin(); it != newest_first.rend(); ++it) {
        it->base = base;
        base += it->size;
      }
    }
    snap.end_ = newest_first[0].base + newest_first[0].size;
    for (auto it = newest_first.rbegin(); it != newest_first.rend(); ++it)
      if (it->fd) snap.files_.push_back(*it);
    return snap;
  }
  return snap;  // the writer rotates faster than it can be read: an empty view, retried later
}

log_snapshot::place log_snapshot::locate(uint64_t offset) const {
  if (offset > end_) return place::past;
  if (offset == end_) return place::at_end;
  return offset < oldest() ? place::before : place::inside;
}

std::optional<std::pair<size_t, uint64_t>> log_snapshot::file_position(uint64_t offset) const {
  if (locate(offset) != place::inside) return std::nullopt;
  for (size_t i = 0; i < files_.size(); ++i)
    if (offset >= files_[i].base && offset < files_[i].base + files_[i].size)
      return std::make_pair(i, offset - files_[i].base);
  return std::nullopt;
}

std::string log_snapshot::read(uint64_t from, size_t max) const {
  std::string out;
  if (from < oldest()) from = oldest();
  for (auto& f : files_) {
    if (out.size() >= max) break;
    uint64_t file_end = f.base + f.size;
    if (from >= file_end) continue;
    size_t want = static_cast<size_t>(std::min<uint64_t>(file_end - from, max - out.size()));
    size_t had = out.size();
    out.resize(had + want);
    size_t got = pread_all(*f.fd, out.data() + had, want, from - f.base);
    out.resize(had + got);
    from += got;
    if (got < want) break;  // shorter than its size at the snapshot: stop at the hole
  }
  return out;
}

uint64_t log_snapshot::tail_start(size_t lines, size_t window) const {
  uint64_t start = end_ - std::min<uint64_t>(end_ - oldest(), window);
  auto text = read(start, static_cast<size_t>(end_ - start));
  auto last_nl = text.rfind('\n');
  if (last_nl == std::string::npos) return start == oldest() ? start : end_;
  // The line starting after the (lines+1)-th newline from the end (the last one ends a line).
  size_t pos = last_nl;
  for (size_t n = 0; n < lines; ++n) {
    if (pos == 0) return start == oldest() ? start : start + 1;
    auto prev = text.rfind('\n', pos - 1);
    if (prev == std::string::npos) {
      if (start == oldest()) return start;  // the kept bytes begin with a line
      return start + pos + 1;               // the window began inside a line: from the next one
    }
    pos = prev;
  }
  return start + pos + 1;
}

log_chunk read_lines(const log_snapshot& snap, uint64_t from, size_t max) {
  log_chunk c;
  auto text = snap.read(from, max);
  auto last_nl = text.rfind('\n');
  if (last_nl == std::string::npos) {
    if (text.size() < max) return c;  // an unfinished line: wait for its end
    c.lines.push_back(text);          // a line longer than a whole event: a piece of it
    c.consumed = text.size();
    return c;
  }
  c.consumed = last_nl + 1;
  for (size_t start = 0; start <= last_nl;) {
    auto nl = text.find('\n', start);
    c.lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return c;
}

}  // namespace berth
