#include "runtime/process/process_list.hpp"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>

#include "runtime/files/layout.hpp"
#include "runtime/process/proc_stat.hpp"

namespace berth::detail {

namespace fs = std::filesystem;

namespace {

// What a process's initial environment says about it.
struct proc_labels {
  bool labelled = false;  // at least one BERTH_* label: judged by labels only
  std::string project, env, release, data_dir;
  uint16_t port = 0;
};

uint16_t parse_port(const std::string& s) {
  char* end = nullptr;
  unsigned long v = std::strtoul(s.c_str(), &end, 10);
  return !s.empty() && end && *end == '\0' && v <= 65535 ? static_cast<uint16_t>(v) : 0;
}

// /proc/<pid>/environ: NUL-separated NAME=value. Unreadable (another user's): unlabelled.
proc_labels read_labels(int pid) {
  proc_labels l;
  std::ifstream in("/proc/" + std::to_string(pid) + "/environ", std::ios::binary);
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto value = [](const std::string& entry, const char* name, std::string* out) {
    size_t n = std::strlen(name);
    if (entry.size() <= n || entry.compare(0, n, name) != 0 || entry[n] != '=') return false;
    *out = entry.substr(n + 1);
    return true;
  };
  size_t begin = 0;
  while (begin < data.size()) {
    size_t end = data.find('\0', begin);
    if (end == std::string::npos) end = data.size();
    std::string entry = data.substr(begin, end - begin), port;
    l.labelled |= value(entry, kProjectVar, &l.project) | value(entry, kEnvVar, &l.env) |
                  value(entry, kReleaseVar, &l.release);
    if (value(entry, "PORT", &port)) l.port = parse_port(port);
    value(entry, kDataDirVar, &l.data_dir);
    begin = end + 1;
  }
  return l;
}

bool labels_match(const proc_labels& l, const instance_labels& f, const std::string& data_dir) {
  return l.labelled && (l.data_dir.empty() || l.data_dir == data_dir) &&
         (f.project.empty() || l.project == f.project) && (f.env.empty() || l.env == f.env) &&
         (f.release.empty() || l.release == f.release);
}

// Where unlabelled processes of the filter run; "" when there is no such folder.
std::string legacy_folder(const instance_labels& f, const std::string& data_dir) {
  if (f.project.empty()) return "";
  project_paths p = paths_for(data_dir, f.project);
  fs::path dir;
  if (!f.release.empty() && (f.env.empty() || f.env == "production")) dir = p.production / f.release;
  else if (f.env == "preview") dir = p.preview;
  else if (f.env == "production") dir = p.production;
  else if (f.env == "build") dir = p.builds;
  else if (f.env.empty()) dir = p.root;
  else return "";
  std::error_code ec;
  auto canonical = fs::weakly_canonical(dir, ec);
  return ec ? "" : canonical.string();
}

instance_ref ref_of(int pid, const proc_stat& st, uint16_t port) {
  return instance_ref{process_instance_id(pid, st.start_time, st.pgrp), port, pid};
}

// The live leader of the group represents it; found by /proc, whatever matched.
instance_ref with_leader(int pgid, const instance_ref& found) {
  auto st = read_proc_stat(pgid);
  if (!st || st->pgrp != pgid || is_dead_state(st->state)) return found;
  uint16_t port = read_labels(pgid).port;
  return ref_of(pgid, *st, port != 0 ? port : found.port);
}

}  // namespace

std::string data_dir_label(const std::string& data_dir) {
  if (data_dir.empty()) return "";
  std::error_code ec;
  auto canonical = fs::weakly_canonical(fs::absolute(data_dir, ec), ec);
  return ec ? data_dir : canonical.string();
}

std::vector<instance_ref> list_instances(const instance_labels& filter, const std::string& data_dir) {
  const std::string folder = legacy_folder(filter, data_dir);
  const std::string ours = data_dir_label(data_dir);
  const int own_group = static_cast<int>(::getpgrp());
  std::map<int, instance_ref> groups;  // by pgid
  for_each_pid([&](int pid) {
    if (pid == 1) return;
    auto st = read_proc_stat(pid);
    if (!st || is_dead_state(st->state) || st->pgrp <= 1 || st->pgrp == own_group || groups.count(st->pgrp))
      return;
    proc_labels l = read_labels(pid);
    bool match = l.labelled ? labels_match(l, filter, ours) : path_is_under(folder, read_cwd(pid));
    if (!match) return;
    auto ref = ref_of(pid, *st, l.port);
    ref.project = l.labelled ? l.project : filter.project;
    groups.emplace(st->pgrp, ref);
  });
  std::vector<instance_ref> out;
  for (auto& [pgid, found] : groups) {
    out.push_back(with_leader(pgid, found));
    out.back().project = found.project;
  }
  return out;
}

}  // namespace berth::detail
