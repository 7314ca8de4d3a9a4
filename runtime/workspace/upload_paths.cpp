#include "runtime/workspace/upload_paths.hpp"

#include <fmt/format.h>

#include "runtime/files/fs_util.hpp"

namespace berth::upload_detail {

namespace {

using fsutil::split_slash;

constexpr int kMaxHops = 40;

}  // namespace

std::string join_path(const std::vector<std::string>& parts, size_t count) {
  std::string out;
  for (size_t i = 0; i < count && i < parts.size(); ++i) {
    if (i) out += '/';
    out += parts[i];
  }
  return out;
}

status split_entry_path(const std::string& name, std::vector<std::string>* parts) {
  parts->clear();
  if (name.empty()) return status::invalid_argument("an empty name");
  if (name.size() > kMaxPath) return status::invalid_argument(fmt::format("a name over {} bytes", kMaxPath));
  if (name[0] == '/') return status::invalid_argument("an absolute path");
  std::string rel = name;
  while (rel.rfind("./", 0) == 0) rel.erase(0, 2);
  if (!rel.empty() && rel.back() == '/') rel.pop_back();
  if (rel.empty() || rel == ".") return status::ok();  // the archive's root
  for (auto& c : split_slash(rel)) {
    if (c == "..") return status::invalid_argument("a \"..\" component (it would climb out of the tree)");
    if (c.empty() || c == ".") return status::invalid_argument("an empty or \".\" component");
    if (c.size() > kMaxComponent)
      return status::invalid_argument(fmt::format("a component over {} bytes", kMaxComponent));
    parts->push_back(std::move(c));
  }
  return status::ok();
}

link_table::walked link_table::walk(std::vector<std::string>* at, const std::string& target, int* hops) const {
  if (target.empty() || target[0] == '/') return walked::escapes;
  for (auto& c : split_slash(target)) {
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      if (at->empty()) return walked::escapes;
      at->pop_back();
      continue;
    }
    at->push_back(c);
    auto link = target_of_.find(join_path(*at, at->size()));
    if (link == target_of_.end()) continue;
    if (++*hops > kMaxHops) return walked::loops;
    at->pop_back();  // a link resolves from its own folder
    if (auto w = walk(at, link->second, hops); w != walked::inside) return w;
  }
  return walked::inside;
}

status link_table::check(const std::vector<std::string>& parts, const std::string& target) const {
  if (target.empty()) return status::invalid_argument("a symlink with an empty target");
  if (target.size() > kMaxPath) return status::invalid_argument(fmt::format("a symlink target over {} bytes", kMaxPath));
  if (target[0] == '/') return status::invalid_argument(fmt::format("a symlink to an absolute path ({})", target));
  std::vector<std::string> at(parts.begin(), parts.end() - 1);
  int hops = 0;
  switch (walk(&at, target, &hops)) {
    case walked::inside: break;
    case walked::escapes: return status::invalid_argument(fmt::format("a symlink leaving the tree (to {})", target));
    case walked::loops: return status::invalid_argument(fmt::format("a loop of symlinks (to {})", target));
  }
  return status::ok();
}

status link_table::add(const std::vector<std::string>& parts, const std::string& target) {
  if (parts.empty()) return status::invalid_argument("a symlink as the tree's root");
  auto s = check(parts, target);
  if (!s) return s;
  target_of_[join_path(parts, parts.size())] = target;
  order_.emplace_back(parts, target);
  return status::ok();
}

status link_table::check_all(std::string* which) const {
  for (auto& [parts, target] : order_) {
    auto s = check(parts, target);
    if (!s) {
      *which = join_path(parts, parts.size());
      return s;
    }
  }
  return status::ok();
}

}  // namespace berth::upload_detail
