// The git snapshot (see source.hpp): git clone run with fork/execve under a timeout, no
// prompts, a sanitized environment, and credentials masked in what it reports.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "runtime/release/source.hpp"
#include "runtime/release/source_snapshot.hpp"

extern char** environ;

namespace berth::source_detail {

namespace {

using steady = std::chrono::steady_clock;

constexpr size_t kMaxOutput = 16 * 1024;  // tail of git's output kept for error messages

struct run_result {
  bool started = false;
  bool timed_out = false;
  int exit_code = -1;  // -1: killed by a signal
  std::string output;  // stdout + stderr, tail
  std::string error;   // why it could not start
};

std::string find_in_path(const std::string& prog) {
  if (prog.find('/') != std::string::npos) return prog;
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  for (;;) {
    size_t colon = dirs.find(':', start);
    std::string dir = dirs.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    if (dir.empty()) dir = ".";
    std::string cand = dir + "/" + prog;
    if (::access(cand.c_str(), X_OK) == 0) return cand;
    if (colon == std::string::npos) return "";
    start = colon + 1;
  }
}

// The daemon's environment minus whatever could point git at another repository or make it
// prompt, plus GIT_TERMINAL_PROMPT=0 and LC_ALL=C.
std::vector<std::string> git_environment() {
  static const char* drop[] = {"GIT_DIR=", "GIT_WORK_TREE=", "GIT_INDEX_FILE=",
                               "GIT_OBJECT_DIRECTORY=", "GIT_ALTERNATE_OBJECT_DIRECTORIES=",
                               "GIT_NAMESPACE=", "GIT_TERMINAL_PROMPT=", "LC_ALL=", "GIT_ASKPASS=",
                               "SSH_ASKPASS=",
                               // ours to set (the credential), and what would print its header
                               "GIT_CONFIG_COUNT=", "GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_",
                               "GIT_CONFIG_PARAMETERS=", "GIT_TRACE", "GIT_CURL_VERBOSE="};
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string kv(*e);
    bool skip = false;
    for (auto* d : drop)
      if (kv.rfind(d, 0) == 0) skip = true;
    if (!skip) env.push_back(std::move(kv));
  }
  env.emplace_back("GIT_TERMINAL_PROMPT=0");
  env.emplace_back("LC_ALL=C");
  if (!std::getenv("GIT_SSH_COMMAND")) env.emplace_back("GIT_SSH_COMMAND=ssh -o BatchMode=yes");
  return env;
}

// The credential as git configuration in the environment (never argv, never a file): an
// Authorization header for requests to the URL's own scheme://host[:port]/ only, so a
// redirect elsewhere does not get it. "user:password" as given; a bare token is the password
// of the user "x-access-token" (accepted by GitHub; GitLab and Gitea take any user with a token).
std::vector<std::string> credential_environment(const std::string& url, const std::string& credential) {
  auto scheme_end = url.find("://");
  if (credential.empty() || scheme_end == std::string::npos) return {};  // the manifest allows http(s) only
  auto authority_end = url.find('/', scheme_end + 3);
  std::string prefix = url.substr(0, authority_end) + "/";
  std::string basic = credential.find(':') == std::string::npos ? "x-access-token:" + credential : credential;
  std::string encoded(4 * ((basic.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(encoded.data()),
                          reinterpret_cast<const unsigned char*>(basic.data()), static_cast<int>(basic.size()));
  encoded.resize(n > 0 ? static_cast<size_t>(n) : 0);
  OPENSSL_cleanse(basic.data(), basic.size());
  return {"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=http." + prefix + ".extraHeader",
          "GIT_CONFIG_VALUE_0=Authorization: Basic " + encoded};
}

run_result run_git(const std::vector<std::string>& args, std::chrono::seconds timeout,
                   const std::vector<std::string>& extra_env = {}) {
  run_result r;
  std::string git = find_in_path("git");
  if (git.empty()) {
    r.error = "git not found in PATH";
    return r;
  }
  // Everything the child needs is prepared before fork (the daemon is multi-threaded).
  std::vector<std::string> argv_s{"git"};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  auto env_s = git_environment();
  env_s.insert(env_s.end(), extra_env.begin(), extra_env.end());
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);

  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  int fds[2];
  if (devnull < 0 || ::pipe2(fds, O_CLOEXEC) != 0) {
    r.error = fmt::format("pipe: {}", errstr(errno));
    if (devnull >= 0) ::close(devnull);
    return r;
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    r.error = fmt::format("fork: {}", errstr(errno));
    ::close(devnull);
    ::close(fds[0]);
    ::close(fds[1]);
    return r;
  }
  if (pid == 0) {
    // Child: async-signal-safe calls only.
    ::setsid();  // own process group (killed as a whole), no controlling terminal
    ::dup2(devnull, 0);
    ::dup2(fds[1], 1);
    ::dup2(fds[1], 2);
    for (int sig = 1; sig < NSIG; ++sig) ::signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(git.c_str(), argv.data(), envp.data());
    ::_exit(127);
  }
  r.started = true;
  ::close(devnull);
  ::close(fds[1]);
  auto deadline = steady::now() + timeout;
  char buf[4096];
  bool eof = false, exited = false;
  int wstatus = 0;
  while (!exited) {
    if (!eof) {
      pollfd p{fds[0], POLLIN, 0};
      int pr = ::poll(&p, 1, 100);
      if (pr > 0) {
        ssize_t n = ::read(fds[0], buf, sizeof buf);
        if (n > 0) {
          r.output.append(buf, static_cast<size_t>(n));
          if (r.output.size() > 2 * kMaxOutput) r.output.erase(0, r.output.size() - kMaxOutput);
        } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
          eof = true;
        }
      }
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_t w = ::waitpid(pid, &wstatus, WNOHANG);
    if (w == pid) exited = true;
    if (!exited && steady::now() >= deadline) {
      ::kill(-pid, SIGKILL);
      ::waitpid(pid, &wstatus, 0);
      r.timed_out = true;
      exited = true;
    }
  }
  // Whatever is still buffered (a helper of git may still hold the pipe: do not wait for it).
  int fl = ::fcntl(fds[0], F_GETFL);
  ::fcntl(fds[0], F_SETFL, fl | O_NONBLOCK);
  for (ssize_t n; !eof && (n = ::read(fds[0], buf, sizeof buf)) > 0;)
    r.output.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  if (r.output.size() > kMaxOutput) r.output.erase(0, r.output.size() - kMaxOutput);
  r.exit_code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
  return r;
}

std::string mask_url(const std::string& url) { return mask_url_credentials(url); }

// The last few lines of git's output, with the URL masked, on one line.
std::string summarize(std::string out, const std::string& url) {
  std::string masked = mask_url(url);
  if (masked != url)
    for (size_t pos; (pos = out.find(url)) != std::string::npos;) out.replace(pos, url.size(), masked);
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < out.size()) {
    size_t nl = out.find_first_of("\r\n", start);
    std::string line = out.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    if (!line.empty()) lines.push_back(std::move(line));
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  std::string tail;
  for (size_t i = lines.size() > 3 ? lines.size() - 3 : 0; i < lines.size(); ++i)
    tail += (tail.empty() ? "" : " | ") + lines[i];
  return tail.empty() ? "(no output)" : tail;
}

status git_failure(const std::string& what, const run_result& r, const std::string& url,
                   std::chrono::seconds timeout) {
  if (!r.started) return status::io_error(fmt::format("{}: {}", what, r.error));
  if (r.timed_out) return status::io_error(fmt::format("{} timed out after {} s", what, timeout.count()));
  return status::io_error(fmt::format("{} failed (exit {}): {}", what, r.exit_code, summarize(r.output, url)));
}

// The clone without its `.git`: nothing downstream (a build, the preview, a release) gets the
// repository's history or configuration.
status finish(const fs::path& tmp, const fs::path& dest) {
  std::error_code ec;
  fs::remove_all(tmp / ".git", ec);
  if (ec) {
    force_remove(tmp);
    return status::io_error(fmt::format("rm {}/.git: {}", tmp.string(), ec.message()));
  }
  return install(tmp, dest);
}

bool bad_chars(const std::string& s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return true;
  return false;
}

}  // namespace

status snapshot_git(const std::string& url, const std::string& ref, const fs::path& dest,
                    std::chrono::seconds timeout, const std::string& credential) {
  if (bad_chars(url) || url[0] == '-')
    return status::invalid_argument(fmt::format("invalid git url '{}'", mask_url(url)));
  if (!ref.empty() && (bad_chars(ref) || ref[0] == '-' || ref.find(' ') != std::string::npos))
    return status::invalid_argument(fmt::format("invalid git ref '{}'", ref));
  std::error_code ec;
  fs::create_directories(dest.parent_path(), ec);
  if (ec) return status::io_error(fmt::format("mkdir {}: {}", dest.parent_path().string(), ec.message()));
  fs::path tmp = temp_sibling(dest, ".tmp-");
  const std::string what = "git clone " + mask_url(url);
  auto cred_env = credential_environment(url, credential);

  std::vector<std::string> shallow{"-c", "protocol.ext.allow=never", "clone", "--quiet", "--depth", "1"};
  if (!ref.empty()) shallow.insert(shallow.end(), {"--branch", ref});
  shallow.insert(shallow.end(), {"--", url, tmp.string()});
  auto r = run_git(shallow, timeout, cred_env);
  if (r.started && !r.timed_out && r.exit_code == 0) return finish(tmp, dest);
  force_remove(tmp);
  if (!r.started || r.timed_out || ref.empty()) return git_failure(what, r, url, timeout);

  // --branch takes branches and tags only: a commit needs the full history.
  auto full = run_git({"-c", "protocol.ext.allow=never", "clone", "--quiet", "--no-checkout", "--",
                       url, tmp.string()},
                      timeout, cred_env);
  if (!(full.started && !full.timed_out && full.exit_code == 0)) {
    force_remove(tmp);
    return git_failure(what, full, url, timeout);
  }
  auto co = run_git({"-C", tmp.string(), "-c", "advice.detachedHead=false", "checkout", "--quiet",
                     "--detach", ref, "--"},
                    timeout);
  if (!(co.started && !co.timed_out && co.exit_code == 0)) {
    force_remove(tmp);
    if (co.started && !co.timed_out)
      return status::not_found(fmt::format("git ref '{}' not found in {}: {}", ref, mask_url(url),
                                           summarize(co.output, url)));
    return git_failure("git checkout " + ref, co, url, timeout);
  }
  return finish(tmp, dest);
}

}  // namespace berth::source_detail
