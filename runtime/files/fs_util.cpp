#include "runtime/files/fs_util.hpp"

#include <sys/stat.h>

#include <cstring>
#include <random>
#include <vector>

#include <fmt/format.h>

namespace berth::fsutil {

namespace fs = std::filesystem;

std::string errstr(int e) { return std::strerror(e); }

std::string random_suffix() {
  std::random_device rd;
  uint64_t v = (static_cast<uint64_t>(rd()) << 32) | rd();
  return fmt::format("{:016x}", v);
}

bool inside(const fs::path& root, const fs::path& p) {
  auto r = p.lexically_relative(root);
  return !r.empty() && *r.begin() != "..";
}

void force_remove(const fs::path& p) {
  std::error_code ec;
  std::vector<fs::path> stack{p};
  while (!stack.empty()) {
    fs::path d = stack.back();
    stack.pop_back();
    if (!fs::is_directory(fs::symlink_status(d, ec))) continue;
    ::chmod(d.c_str(), 0700);
    for (fs::directory_iterator it(d, ec), end; !ec && it != end; it.increment(ec))
      if (it->is_directory(ec) && !it->is_symlink(ec)) stack.push_back(it->path());
  }
  fs::remove_all(p, ec);
}

}  // namespace berth::fsutil
