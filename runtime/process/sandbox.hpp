// The process driver's sandbox: every process berth starts for a project (a build, a preview, a
// production release) runs under bubblewrap (Debian's `bwrap`), which berth starts in its place.
//
// What the process sees: the host's /usr, /etc and the /bin, /sbin, /lib* links read-only, a
// private /tmp and /dev/shm, a minimal /dev, the /proc of its own PID namespace, and the folders
// of its sandbox_spec at their host paths (the release read-only; a preview's src, a build's
// workspace and its data folder writable). Nothing else of the host: not berth's data dir, its
// token or event log, other projects, or other processes. The network is the host's (health
// checks and the proxy reach the app on loopback).
//
// As whom: when berth is root, bwrap sets up the namespaces as root and the command is entered
// through setpriv(1) as the project's own uid/gid, with no supplementary groups, no capabilities
// (bounding set emptied) and no_new_privs. When berth is not root, bwrap runs in a new user
// namespace mapping berth's own ids (files are then guarded by the mount namespace alone).
//
// The process tree keeps the driver's contract: the started process (bwrap, outer) leads the
// process group and carries the labels in its environment; the namespace's init (bwrap) and the
// app stay in that group. A graceful stop signals the group's members but not the outer bwrap
// (process_runtime::stop), which exits with the app's exit code (128 + the signal when the app
// was killed); SIGKILL of the group takes the namespace's init, and with it every process of the
// namespace. When the outer bwrap ends first (killed by someone), the runtime's exit watch kills
// what is left of its group, so that nothing holds the instance's port.
//
// Everything here is thread-safe (no shared state); sandbox_options is read-only after make.
#pragma once
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "runtime/driver.hpp"
#include "runtime/status.hpp"

namespace berth {

struct sandbox_options {
  bool enabled = false;        // false: sandbox specs are ignored and processes run as berth
  std::string bwrap = "bwrap"; // bubblewrap (PATH lookup without '/')
  std::string setpriv = "/usr/bin/setpriv";
  bool as_root = false;        // berth is root: own uids via setpriv; else a user namespace
  // The host's system folders as the sandbox shows them: ("/bin" -> "usr/bin") for links,
  // ("/usr" -> "") for folders bound read-only. Filled by make_sandbox_options().
  std::vector<std::pair<std::string, std::string>> system;
};

// The options for this host: whether berth is root, and how /bin, /lib* ... look here.
sandbox_options make_sandbox_options(bool enabled, std::string bwrap = "bwrap");

// Whether bubblewrap can be found (a '/' path: that file; else along PATH) and is executable.
bool sandbox_available(const sandbox_options& o);

// Runs `true` in a sandbox of these options (as `probe_uid` when root) and says why it could not:
// bubblewrap missing, namespaces refused by the kernel, setpriv missing. Blocks (~10 ms).
status check_sandbox(const sandbox_options& o, uint32_t probe_uid);

// The argv that runs `command` confined as `s` says, in `cwd` (absolute): bwrap's namespaces
// and mounts, setpriv when the spec has its own uid, then the command. Pure.
std::vector<std::string> sandbox_argv(const sandbox_options& o, const sandbox_spec& s, const std::filesystem::path& cwd,
                                      const std::vector<std::string>& command);

// The variables a confined process gets on top of its spec's env (the spec's win): HOME and
// BERTH_APP_DATA (its data folder), TMPDIR=/tmp.
std::map<std::string, std::string> sandbox_env(const sandbox_spec& s);

// Where `program` would be executed from inside the sandbox: a name without '/' along `path`,
// else relative to `cwd`; it must exist, be executable and lie where the sandbox can see it.
// not_found (missing or invisible), invalid_argument (not an executable file). Reads the host.
status find_sandboxed_program(const sandbox_options& o, const sandbox_spec& s, const std::string& program,
                              const std::filesystem::path& cwd, const std::string& path);

// Makes what the sandbox is given usable by it: creates the data folder and, when the spec has
// its own uid, hands every entry of the data folder, the writable folders and the read-only
// release to that uid/gid (lchown: links are never followed; a file with several hard links is
// left alone). io_error naming the path on failure. Call with nothing running in the sandbox.
status prepare_sandbox_dirs(const sandbox_spec& s);

}  // namespace berth
