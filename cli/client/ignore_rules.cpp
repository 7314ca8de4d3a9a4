#include "cli/client/ignore_rules.hpp"

#include <fcntl.h>
#include <fnmatch.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>
#include <stdexcept>

#include "runtime/files/fs_util.hpp"

namespace berth::cli {

namespace {

// Trailing spaces are dropped unless escaped with a backslash (as git does).
std::string trim_trailing_spaces(std::string line) {
  while (!line.empty() && line.back() == ' ') {
    size_t backslashes = 0;
    for (size_t i = line.size() - 1; i > 0 && line[i - 1] == '\\'; --i) ++backslashes;
    if (backslashes % 2 == 1) break;  // "\ " keeps its space
    line.pop_back();
  }
  return line;
}

// Pattern segments against path segments; "**" matches zero or more whole segments, except as
// the last segment ("a/**"), where it matches one or more: everything inside, not `a` itself.
bool match_segments(const std::vector<std::string>& pat, size_t p, const std::vector<std::string>& path, size_t i) {
  while (p < pat.size()) {
    if (pat[p] == "**") {
      bool last = p + 1 == pat.size();
      if (last) return i < path.size();
      for (size_t k = i; k <= path.size(); ++k)
        if (match_segments(pat, p + 1, path, k)) return true;
      return false;
    }
    if (i >= path.size() || ::fnmatch(pat[p].c_str(), path[i].c_str(), FNM_PATHNAME) != 0) return false;
    ++p;
    ++i;
  }
  return i == path.size();
}

}  // namespace

ignore_rules ignore_rules::parse(const std::string& text) {
  ignore_rules out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    line = trim_trailing_spaces(line);
    if (line.empty() || line[0] == '#') continue;
    rule r;
    if (line[0] == '!') {
      r.negate = true;
      line.erase(0, 1);
    } else if (line.size() > 1 && line[0] == '\\' && (line[1] == '#' || line[1] == '!')) {
      line.erase(0, 1);  // a literal '#' or '!' at the start
    }
    if (!line.empty() && line.back() == '/') {
      r.dir_only = true;
      while (!line.empty() && line.back() == '/') line.pop_back();
    }
    if (line.empty()) continue;
    // A '/' at the start or in the middle anchors the pattern to the root; without one it
    // matches at any depth, as if it began with "**/".
    bool anchored = line.find('/') != std::string::npos;
    while (!line.empty() && line[0] == '/') line.erase(0, 1);
    if (line.empty()) continue;
    if (!anchored) r.segments.push_back("**");
    for (auto& seg : fsutil::split_slash(line))
      if (!seg.empty()) r.segments.push_back(seg);  // "a//b" is "a/b"
    out.rules_.push_back(std::move(r));
  }
  return out;
}

ignore_rules ignore_rules::load(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return {};
    throw std::runtime_error("cannot read " + path + ": " + std::strerror(errno));
  }
  std::string text;
  char buf[8192];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0) text.append(buf, static_cast<size_t>(n));
  int err = errno;
  ::close(fd);
  if (n < 0) throw std::runtime_error("cannot read " + path + ": " + std::strerror(err));
  return parse(text);
}

bool ignore_rules::excluded(const std::string& path, bool is_dir) const {
  auto segments = fsutil::split_slash(path);
  for (auto it = rules_.rbegin(); it != rules_.rend(); ++it) {
    if (it->dir_only && !is_dir) continue;
    if (match_segments(it->segments, 0, segments, 0)) return !it->negate;
  }
  return false;
}

}  // namespace berth::cli
