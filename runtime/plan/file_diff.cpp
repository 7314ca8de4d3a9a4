// The walk and the hash are runtime/release's own (artifacts.hpp), so the plan lists exactly the
// entries, and gives exactly the hash, that packaging would.
#include "runtime/plan/file_diff.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "runtime/files/fs_util.hpp"
#include "runtime/release/artifacts.hpp"

namespace berth {

namespace {

namespace fs = std::filesystem;
using release_detail::entry;
using release_detail::entry_map;
using release_detail::kind;

struct fd_closer {
  int fd;
  ~fd_closer() {
    if (fd >= 0) ::close(fd);
  }
};

// Reads up to n bytes (fewer only at the end of the file).
ssize_t read_up_to(int fd, char* p, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::read(fd, p + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  return static_cast<ssize_t>(got);
}

// Whether two regular files of the same size hold the same bytes.
status same_bytes(const fs::path& root_a, const entry& a, const fs::path& root_b, const entry& b,
                  const std::string& rel, bool* same) {
  fd_closer fa{release_detail::open_below(root_a, a.abs)};
  if (fa.fd < 0) return status::io_error(fmt::format("open {}: {}", rel, fsutil::errstr(errno)));
  fd_closer fb{release_detail::open_below(root_b, b.abs)};
  if (fb.fd < 0) return status::io_error(fmt::format("open {}: {}", rel, fsutil::errstr(errno)));
  std::vector<char> ba(1 << 16), bb(1 << 16);
  for (;;) {
    ssize_t na = read_up_to(fa.fd, ba.data(), ba.size());
    ssize_t nb = read_up_to(fb.fd, bb.data(), bb.size());
    if (na < 0 || nb < 0) return status::io_error(fmt::format("read {}: {}", rel, fsutil::errstr(errno)));
    if (na != nb || std::memcmp(ba.data(), bb.data(), static_cast<size_t>(na)) != 0) {
      *same = false;
      return status::ok();
    }
    if (na == 0) break;
  }
  *same = true;
  return status::ok();
}

int64_t size_of(const entry& e) { return e.k == kind::file ? static_cast<int64_t>(e.id.size) : -1; }

std::string shown(const std::string& rel, const entry& e) { return e.k == kind::dir ? rel + "/" : rel; }

// Whether `rel` (a directory) has a listed change below it.
bool explained(const std::string& rel, const std::vector<file_change>& listed) {
  auto prefix = rel + "/";
  return std::any_of(listed.begin(), listed.end(), [&](const file_change& c) {
    return c.path.size() > prefix.size() && c.path.compare(0, prefix.size(), prefix) == 0;
  });
}

}  // namespace

status diff_release(const fs::path& build_dir, const std::vector<std::string>& artifacts,
                    const fs::path& release_dir, std::string* hash12, std::vector<file_change>* changes) {
  changes->clear();
  fs::path after_root, before_root;
  entry_map after, before;
  auto wanted = artifacts.empty() ? std::vector<std::string>{"."} : artifacts;  // as packaging
  if (auto s = release_detail::collect(build_dir, wanted, &after_root, &after); !s) return s;
  std::string hex;
  if (auto s = release_detail::process(after_root, after, nullptr, &hex); !s) return s;
  *hash12 = hex.substr(0, 12);
  std::error_code ec;
  if (!release_dir.empty() && fs::is_directory(release_dir, ec))
    if (auto s = release_detail::collect(release_dir, {"."}, &before_root, &before); !s) return s;

  std::vector<file_change> out;
  std::vector<std::pair<std::string, file_change>> dirs;  // added/removed folders, kept if unexplained
  auto a = after.begin();
  auto b = before.begin();
  while (a != after.end() || b != before.end()) {
    bool only_after = b == before.end() || (a != after.end() && a->first < b->first);
    bool only_before = a == after.end() || (b != before.end() && b->first < a->first);
    if (only_after) {
      file_change c{shown(a->first, a->second), "added", -1, size_of(a->second)};
      if (a->second.k == kind::dir) dirs.emplace_back(a->first, c);
      else out.push_back(c);
      ++a;
      continue;
    }
    if (only_before) {
      file_change c{shown(b->first, b->second), "removed", size_of(b->second), -1};
      if (b->second.k == kind::dir) dirs.emplace_back(b->first, c);
      else out.push_back(c);
      ++b;
      continue;
    }
    const auto& rel = a->first;
    const entry &now = a->second, &was = b->second;
    bool changed = now.k != was.k || now.mode != was.mode || now.target != was.target;
    if (!changed && now.k == kind::file) {
      bool same = now.id.size == was.id.size;
      if (same)
        if (auto s = same_bytes(before_root, was, after_root, now, rel, &same); !s) return s;
      changed = !same;
    }
    if (changed) out.push_back({shown(rel, now), "changed", size_of(was), size_of(now)});
    ++a, ++b;
  }
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it)  // deepest first: a parent sees its children
    if (!explained(it->first, out)) out.push_back(it->second);
  std::sort(out.begin(), out.end(), [](const file_change& x, const file_change& y) { return x.path < y.path; });
  *changes = std::move(out);
  return status::ok();
}

}  // namespace berth
