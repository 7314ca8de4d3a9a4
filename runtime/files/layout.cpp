#include "runtime/files/layout.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <unistd.h>

#include <fstream>
#include <iterator>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace berth {

namespace fs = std::filesystem;

fs::path projects_root(const std::string& data_dir) { return fs::path(data_dir) / "projects"; }
fs::path event_log_dir(const std::string& data_dir) { return fs::path(data_dir) / "events"; }

project_paths paths_for(const std::string& data_dir, const std::string& name) {
  project_paths p;
  p.root = projects_root(data_dir) / name;
  p.env_file = p.root / ".env";
  p.secrets_file = p.root / ".secrets";
  p.preview = p.root / "preview";
  p.preview_src = p.preview / "src";
  p.preview_logs = p.preview / "logs";
  p.production = p.root / "production";
  p.production_logs = p.production / "logs";
  p.builds = p.production / "builds";
  return p;
}

status make_dirs(std::initializer_list<fs::path> dirs) {
  for (auto& dir : dirs) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return status::io_error(fmt::format("mkdir {}: {}", dir.string(), ec.message()));
  }
  return status::ok();
}

status create_project_dirs(const project_paths& p) {
  return make_dirs({p.preview_src, p.preview_logs, p.production_logs});
}

status remove_project_dir(const project_paths& p) {
  std::error_code ec;
  fs::remove_all(p.root, ec);
  if (ec) return status::io_error(fmt::format("rm {}: {}", p.root.string(), ec.message()));
  return status::ok();
}

namespace {

bool same_content(const fs::path& target, const std::string& content) {
  std::error_code ec;
  if (!fs::is_regular_file(target, ec) || fs::file_size(target, ec) != content.size() || ec) return false;
  std::ifstream in(target, std::ios::binary);
  std::string current(content.size(), '\0');
  return in.read(current.data(), static_cast<std::streamsize>(current.size())) && current == content;
}

status write_atomically(const fs::path& target, const std::string& content, mode_t mode) {
  auto tmp = target.string() + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return status::io_error(fmt::format("open {}: {}", tmp, strerror(errno)));
  ::fchmod(fd, mode);
  bool ok = ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
  ok = ::fsync(fd) == 0 && ok;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), target.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    auto what = fmt::format("write {}: {}", target.string(), strerror(err));
    return err == ENOSPC ? status::no_space(what) : status::io_error(what);
  }
  return status::ok();
}

// Values are single-quoted so the file can be sourced by a shell without expansion.
std::string quoted(const std::string& v) {
  std::string out = "'";
  for (char c : v) out += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace

status write_env_file(const project_paths& p, const std::string& name, uint16_t production_port,
                      uint16_t preview_port, const std::map<std::string, std::string>& env) {
  std::string content = fmt::format("BERTH_PROJECT={}\nPRODUCTION_PORT={}\nPREVIEW_PORT={}\n",
                                    name, production_port, preview_port);
  for (auto& [k, v] : env) content += k + "=" + quoted(v) + "\n";
  if (same_content(p.env_file, content)) return status::ok();  // every start: no write needed (a full disk)
  return write_atomically(p.env_file, content, 0600);  // berth's own record, like .secrets
}

namespace {

// The format of berth before 0.2 (`NAME='value'` lines, the value single-quoted as quoted()
// writes it). Read as the quoting defines it rather than line by line, so a multi-line value
// that an older berth wrote comes back whole.
std::map<std::string, std::string> parse_legacy_secrets(const std::string& text) {
  std::map<std::string, std::string> out;
  size_t i = 0;
  while (i < text.size()) {
    auto eq = text.find('=', i);
    auto nl = text.find('\n', i);
    if (eq == std::string::npos || (nl != std::string::npos && nl < eq)) {  // not NAME=…: skip the line
      if (nl == std::string::npos) break;
      i = nl + 1;
      continue;
    }
    std::string name = text.substr(i, eq - i), value;
    i = eq + 1;
    if (i < text.size() && text[i] == '\'') {
      ++i;
      for (; i < text.size(); ++i) {
        if (text[i] != '\'') {
          value += text[i];
        } else if (text.compare(i, 4, "'\\''") == 0) {
          value += '\'';
          i += 3;
        } else {
          ++i;  // the closing quote
          break;
        }
      }
    }
    auto end = text.find('\n', i);
    i = end == std::string::npos ? text.size() : end + 1;
    out[name] = value;
  }
  return out;
}

}  // namespace

std::map<std::string, std::string> read_secrets_file(const project_paths& p) {
  std::ifstream in(p.secrets_file, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.empty()) return {};
  if (text[0] != '{') return parse_legacy_secrets(text);
  std::map<std::string, std::string> out;
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return out;
  for (auto& [k, v] : j.items())
    if (v.is_string()) out[k] = v.get<std::string>();
  return out;
}

status write_secrets_file(const project_paths& p, const std::map<std::string, std::string>& secrets) {
  std::string content;
  try {
    // Values came through a JSON parser (valid UTF-8); strict, so nothing is silently replaced.
    content = nlohmann::json(secrets).dump(1, ' ', false, nlohmann::json::error_handler_t::strict) + "\n";
  } catch (const nlohmann::json::exception& e) {
    return status::invalid_argument(fmt::format("secrets: {}", e.what()));
  }
  return write_atomically(p.secrets_file, content, 0600);
}

}  // namespace berth
