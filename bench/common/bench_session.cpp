#include "bench/common/bench_session.hpp"

#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

#include "runtime/auth/token.hpp"
#include "tests/common/support.hpp"

namespace berth::bench {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;

void session::guard(std::chrono::seconds limit) {
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  std::thread([this, sigs] {
    int sig = 0;
    sigwait(&sigs, &sig);
    std::fprintf(stderr, "%s: signal %d, cleaning up\n", name_.c_str(), sig);
    final_cleanup();
    std::_Exit(130);
  }).detach();
  std::thread([this, limit] {
    std::this_thread::sleep_for(limit);
    std::fprintf(stderr, "%s: time limit of %lld s reached\n--- berth log (tail) ---\n%s\n", name_.c_str(),
                 static_cast<long long>(limit.count()), server_log_tail().c_str());
    final_cleanup();
    std::_Exit(3);
  }).detach();
}

std::string session::open_dir(const std::string& parent, bool keep) {
  cleanup();
  std::string dashed = name_;
  for (auto& c : dashed)
    if (c == '_') c = '-';
  std::string tmpl = parent + "/berth-" + dashed + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) fail(std::string("mkdtemp: ") + std::strerror(errno));
  std::error_code ec;
  auto dir = fs::canonical(buf.data(), ec).string();
  std::lock_guard<std::mutex> lock(mu_);
  if (final_) std::_Exit(130);
  dir_ = dir;
  keep_ = keep;
  return dir;
}

void session::start_berth(const std::vector<std::string>& args, api_client& api,
                          const std::function<bool(const json&)>& ready) {
  std::string dir, spawn_error;
  {
    std::lock_guard<std::mutex> lock(mu_);
    dir = dir_;
  }
  // The API needs a bearer token: give berth one (unless the caller did) and make `api` send it.
  auto argv = args;
  auto flag = std::find(argv.begin(), argv.end(), "--token");
  std::string token;
  if (flag != argv.end() && flag + 1 != argv.end()) {
    token = *(flag + 1);
  } else {
    token = "bench-" + berth::generate_token();
    argv.insert(argv.end(), {"--token", token});
  }
  api.cli.set_bearer_token_auth(token);
  pid_t pid = spawn(argv, dir + "/server.log", &spawn_error);
  if (pid < 0) fail(spawn_error);
  {
    std::lock_guard<std::mutex> lock(mu_);
    berth_ = pid;
  }
  auto until = std::chrono::steady_clock::now() + 20s;
  for (;;) {
    auto [code, body] = api.get("/health");
    if (code == 200 && (!ready || ready(body))) return;
    bool exited = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      int st = 0;
      if (berth_ > 0 && ::waitpid(berth_, &st, WNOHANG) == berth_) {
        berth_ = -1;
        exited = true;
      }
    }
    if (exited) fail("berth serve exited at start");
    if (std::chrono::steady_clock::now() > until) fail("berth serve not ready within 20 s", body.dump());
    std::this_thread::sleep_for(25ms);
  }
}

void session::kill_berth() {
  std::lock_guard<std::mutex> lock(mu_);
  if (berth_ <= 0) return;
  ::kill(berth_, SIGKILL);
  int st = 0;
  while (::waitpid(berth_, &st, 0) < 0 && errno == EINTR) {
  }
  berth_ = -1;
}

pid_t session::berth_pid() {
  std::lock_guard<std::mutex> lock(mu_);
  return berth_;
}

void session::cleanup_locked() {
  if (berth_ > 0) {
    ::kill(berth_, SIGKILL);
    int st = 0;
    while (::waitpid(berth_, &st, 0) < 0 && errno == EINTR) {
    }
    berth_ = -1;
  }
  if (dir_.empty()) return;
  berth::it::kill_processes_in(dir_);
  auto left = berth::it::procs_in(dir_);
  if (!left.empty()) std::fprintf(stderr, "%s: %zu processes still in %s\n", name_.c_str(), left.size(), dir_.c_str());
  if (keep_) {
    std::fprintf(stderr, "%s: kept %s\n", name_.c_str(), dir_.c_str());
  } else {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  dir_.clear();
}

void session::cleanup() {
  std::lock_guard<std::mutex> lock(mu_);
  cleanup_locked();
}

void session::final_cleanup() {
  std::lock_guard<std::mutex> lock(mu_);
  final_ = true;
  cleanup_locked();
}

std::string session::server_log_tail(size_t max) {
  std::string dir;
  {
    std::lock_guard<std::mutex> lock(mu_);
    dir = dir_;
  }
  if (dir.empty()) return "";
  auto s = berth::it::read_file(dir + "/server.log");
  return s.size() > max ? "..." + s.substr(s.size() - max) : s;
}

void session::fail(const std::string& what, const std::string& extra) {
  std::fprintf(stderr, "%s failed: %s\n%s\n--- berth log (tail) ---\n%s\n", name_.c_str(), what.c_str(),
               extra.c_str(), server_log_tail().c_str());
  std::fflush(stdout);
  final_cleanup();
  std::_Exit(1);
}

namespace {

const json fast_health = {{"path", "/health"}, {"timeout_s", 10}, {"interval_ms", 10}, {"min_healthy_s", 0}};

project_setup create(session& s, api_client& api, project_setup proj, const json& build, const json& command,
                     const std::string& nonce) {
  json m = {{"name", proj.name},
            {"source", {{"path", proj.src}}},
            {"build", build},
            {"production", {{"command", command}, {"health", fast_health}, {"keep", 3}}}};
  auto [code, body] = api.post("/api/projects", m);
  if (code != 201) s.fail("POST /api/projects " + proj.name + ": HTTP " + std::to_string(code), body.dump());
  proj.port = body.at("ports").at("production").get<uint16_t>();
  proj.version = proj.set_version(nonce + "-0");
  return proj;
}

project_setup app_source(const std::string& dir, const std::string& app) {
  project_setup proj;
  proj.name = "bench-" + app;
  proj.src = dir + "/src-" + app;
  fs::create_directories(proj.src);
  proj.set_version = [src = proj.src, app](const std::string& v) {
    berth::it::write_file(src + "/VERSION", app + "-" + v + "\n");
    return app + "-" + v;
  };
  return proj;
}

}  // namespace

project_setup create_tiny(session& s, api_client& api, const std::string& dir, const std::string& tiny_bin,
                          const std::string& nonce) {
  return create(s, api, app_source(dir, "tiny"),
                {{"command", {"install", "-D", "-m", "644", "-t", "dist", "VERSION"}}, {"artifacts", {"dist"}}},
                {tiny_bin, "dist/VERSION"}, nonce);
}

project_setup create_python(session& s, api_client& api, const std::string& dir, const std::string& python,
                            const std::string& nonce) {
  auto proj = app_source(dir, "python");
  std::error_code ec;
  fs::copy_file(BENCH_PYTHON_APP, proj.src + "/server.py", fs::copy_options::overwrite_existing, ec);
  if (ec) s.fail(std::string("cannot copy ") + BENCH_PYTHON_APP + ": " + ec.message());
  return create(s, api, proj,
                {{"command", {"install", "-D", "-m", "644", "-t", "dist", "VERSION", "server.py"}},
                 {"artifacts", {"dist"}}},
                {python, "dist/server.py"}, nonce);
}

std::vector<std::string> port_window_args(uint32_t random) {
  int prod_lo = 8000 + static_cast<int>(random % 9) * 200;
  int preview_lo = 4000 + static_cast<int>((random / 9) % 19) * 200;
  return {"--production-ports", std::to_string(prod_lo) + "-" + std::to_string(prod_lo + 199),
          "--preview-ports", std::to_string(preview_lo) + "-" + std::to_string(preview_lo + 199)};
}

}  // namespace berth::bench
