#include "tests/integration/harness.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <httplib.h>

#include "runtime/auth/token.hpp"

extern char** environ;

namespace berth::it {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

// ---- files ----------------------------------------------------------------------------------

temp_dir::temp_dir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/berth-it-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr)
    throw std::runtime_error(std::string("mkdtemp failed: ") + std::strerror(errno));
  path_ = buf.data();
}

temp_dir::~temp_dir() {
  if (std::getenv("BERTH_IT_KEEP") != nullptr) return;
  std::error_code ec;
  fs::remove_all(path_, ec);
}

uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    throw std::runtime_error("bind 127.0.0.1:0 failed");
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::set<std::string> list_dir(const std::string& path) {
  std::set<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec))
    names.insert(it->path().filename().string());
  return names;
}

// ---- auth -----------------------------------------------------------------------------------

namespace {

std::mutex& tokens_mutex() {
  static std::mutex mu;
  return mu;
}

std::map<uint16_t, std::string>& tokens() {
  static std::map<uint16_t, std::string> m;
  return m;
}

}  // namespace

const std::string& test_token() {
  static const std::string token = "it-" + berth::generate_token();
  return token;
}

std::string token_for(uint16_t port) {
  std::lock_guard<std::mutex> lock(tokens_mutex());
  auto it = tokens().find(port);
  return it != tokens().end() ? it->second : test_token();
}

void set_token_for(uint16_t port, const std::string& token) {
  std::lock_guard<std::mutex> lock(tokens_mutex());
  tokens()[port] = token;
}

void use_token(httplib::Client& cli, uint16_t port) { cli.set_bearer_token_auth(token_for(port).c_str()); }

// ---- HTTP -----------------------------------------------------------------------------------


namespace {

bool same_name(const std::string& a, const std::string& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

bool json_error_shape(const json& body) {
  if (body.is_discarded() || !body.is_object()) return false;
  auto it = body.find("error");
  if (it == body.end() || !it->is_object()) return false;
  auto code = it->find("code"), message = it->find("message");
  return code != it->end() && code->is_string() && !code->get<std::string>().empty() &&
         message != it->end() && message->is_string() && !message->get<std::string>().empty();
}

}  // namespace

bool http_result::is_json_error() const { return json_error_shape(body); }

std::string http_result::header(const std::string& name) const {
  for (auto& [k, v] : headers)
    if (same_name(k, name)) return v;
  return "";
}

std::string http_result::error_code() const {
  return is_json_error() ? body["error"]["code"].get<std::string>() : std::string();
}

std::string http_result::describe() const {
  if (status == -1) return "no response: " + error;
  std::string shown = raw.size() > 600 ? raw.substr(0, 600) + "..." : raw;
  return "HTTP " + std::to_string(status) + " " + shown;
}

namespace {

http_result convert(const httplib::Result& r) {
  http_result out;
  if (!r) {
    out.error = httplib::to_string(r.error());
    out.body = json(json::value_t::discarded);
    return out;
  }
  out.status = r->status;
  out.raw = r->body;
  for (auto& [k, v] : r->headers) out.headers.emplace_back(k, v);
  out.body = json::parse(out.raw, nullptr, false);
  return out;
}

}  // namespace

client::client(uint16_t port, std::chrono::seconds read_timeout) : client(port, auth{}, read_timeout) {}

client::client(uint16_t port, auth a, std::chrono::seconds read_timeout)
    : port_(port), auth_(std::move(a)), cli_(std::make_unique<httplib::Client>("127.0.0.1", port)) {
  cli_->set_connection_timeout(2, 0);
  cli_->set_read_timeout(read_timeout.count(), 0);
  cli_->set_write_timeout(10, 0);
  cli_->set_keep_alive(true);
  cli_->set_tcp_nodelay(true);  // headers and body go in separate writes: avoid Nagle delays
}

client::~client() = default;

http_result client::get(const std::string& path) { return send("GET", path); }

http_result client::post(const std::string& path, const std::string& body,
                         const std::string& content_type) {
  return send("POST", path, body, {}, content_type);
}

http_result client::put(const std::string& path, const std::string& body,
                        const std::string& content_type) {
  return send("PUT", path, body, {}, content_type);
}

http_result client::del(const std::string& path) { return send("DELETE", path); }

http_result client::send(const std::string& method, const std::string& path, const std::string& body,
                         const env_list& headers, const std::string& content_type) {
  httplib::Headers h;
  // The token is looked up per request: the server on this port may have been restarted.
  if (auth_.how == auth::mode::server_token)
    h.emplace("Authorization", "Bearer " + token_for(port_));
  else if (auth_.how == auth::mode::header)
    h.emplace("Authorization", auth_.value);
  for (auto& [k, v] : headers) h.emplace(k, v);
  auto p = path.c_str();
  auto ct = content_type.c_str();
  if (method == "GET") {
    // A kept-alive connection the server closed as idle (after 2 s) at the moment this request
    // went out fails with Read/Write before any answer; like browsers and curl, an idempotent
    // request is sent again once, on a new connection (RFC 9112 9.3.1).
    auto r = cli_->Get(p, h);
    if (!r && (r.error() == httplib::Error::Read || r.error() == httplib::Error::Write)) r = cli_->Get(p, h);
    return convert(r);
  }
  if (method == "DELETE") return body.empty() ? convert(cli_->Delete(p, h)) : convert(cli_->Delete(p, h, body, ct));
  if (method == "POST") return convert(cli_->Post(p, h, body, ct));
  if (method == "PUT") return convert(cli_->Put(p, h, body, ct));
  if (method == "PATCH") return convert(cli_->Patch(p, h, body, ct));
  if (method == "OPTIONS") return convert(cli_->Options(p, h));
  if (method == "HEAD") return convert(cli_->Head(p, h));
  throw std::invalid_argument("client::send: unsupported method " + method);
}

http_result http_get(uint16_t port, const std::string& path) { return client(port).get(path); }
http_result http_post(uint16_t port, const std::string& path, const json& body) {
  return client(port).post(path, body);
}
http_result http_put(uint16_t port, const std::string& path, const json& body) {
  return client(port).put(path, body);
}
http_result http_del(uint16_t port, const std::string& path) { return client(port).del(path); }

// ---- raw HTTP -------------------------------------------------------------------------------

raw_response parse_response(const std::string& bytes) {
  raw_response out;
  out.body = json(json::value_t::discarded);
  auto end = bytes.find("\r\n\r\n");
  if (end == std::string::npos || bytes.rfind("HTTP/1.", 0) != 0) return out;
  out.head = bytes.substr(0, end);
  auto sp = out.head.find(' ');
  if (sp == std::string::npos) return out;
  try {
    out.status = std::stoi(out.head.substr(sp + 1, 3));
  } catch (...) {
    return out;
  }
  auto rest = bytes.substr(end + 4);
  auto length = out.header("Content-Length");
  if (!length.empty()) {
    size_t n = 0;
    try {
      n = std::stoul(length);
    } catch (...) {
      return out;
    }
    out.complete = rest.size() >= n;
    out.raw = rest.substr(0, n);
  } else {
    out.raw = rest;
  }
  out.body = json::parse(out.raw, nullptr, false);
  return out;
}

std::string raw_response::header(const std::string& name) const {
  std::istringstream in(head);
  std::string line;
  std::getline(in, line);  // status line
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto colon = line.find(':');
    if (colon == std::string::npos || !same_name(line.substr(0, colon), name)) continue;
    auto v = line.substr(colon + 1);
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.erase(0, 1);
    return v;
  }
  return "";
}

bool raw_response::is_json_error() const { return json_error_shape(body); }

std::string raw_response::error_code() const {
  return is_json_error() ? body["error"]["code"].get<std::string>() : std::string();
}

std::string raw_response::describe() const {
  if (status == -1) return "no complete response";
  return head + "\n\n" + (raw.size() > 600 ? raw.substr(0, 600) + "..." : raw);
}

raw_connection::raw_connection(uint16_t port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd_);
    throw std::runtime_error("cannot connect to 127.0.0.1:" + std::to_string(port));
  }
}

raw_connection::~raw_connection() {
  if (fd_ >= 0) ::close(fd_);
}

bool raw_connection::send(const std::string& bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    auto n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

bool raw_connection::read_for(std::chrono::milliseconds wait) {
  auto until = clock_type::now() + wait;
  while (!closed_) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - clock_type::now()).count();
    if (left <= 0) break;
    pollfd p{fd_, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    char buf[16384];
    auto n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      closed_ = true;  // EOF or reset
      break;
    }
    received_.append(buf, static_cast<size_t>(n));
  }
  return !closed_;
}

raw_response raw_connection::read_response(std::chrono::milliseconds timeout) {
  auto until = clock_type::now() + timeout;
  for (;;) {
    auto r = parse_response(received_);
    if (r.complete || closed_ || clock_type::now() >= until) return r;
    read_for(50ms);
  }
}

bool raw_connection::wait_closed(std::chrono::milliseconds timeout) {
  auto until = clock_type::now() + timeout;
  while (!closed_ && clock_type::now() < until) read_for(50ms);
  return closed_;
}

raw_response raw_request(uint16_t port, const std::string& bytes, std::chrono::milliseconds timeout) {
  raw_connection c(port);
  c.send(bytes);
  return c.read_response(timeout);
}

// ---- processes ------------------------------------------------------------------------------

namespace {

int decode_status(int st) {
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return -1;
}

// argv/envp as owned strings plus the char* arrays execve wants (built before fork).
struct exec_image {
  std::vector<std::string> args, envs;
  std::vector<char*> argv, envp;

  exec_image(const std::vector<std::string>& a, const env_list& extra) : args(a) {
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
      std::string kv = *e;
      if (kv.rfind("BERTH_", 0) == 0) continue;  // the test decides every BERTH_* variable
      bool overridden = false;
      for (auto& [k, v] : extra)
        if (kv.rfind(k + "=", 0) == 0) overridden = true;
      if (!overridden) envs.push_back(kv);
    }
    for (auto& [k, v] : extra) envs.push_back(k + "=" + v);
    for (auto& s : args) argv.push_back(s.data());
    argv.push_back(nullptr);
    for (auto& s : envs) envp.push_back(s.data());
    envp.push_back(nullptr);
  }
};

// fork + execve with stdout/stderr on the given fds and stdin on /dev/null. The child dies
// with the test binary (PR_SET_PDEATHSIG), so a crashed test leaves no server behind.
pid_t spawn(exec_image& img, int out_fd, int err_fd) {
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(std::string("fork failed: ") + std::strerror(errno));
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    // Undo anything the test process may have blocked or ignored.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    if (null_fd >= 0) ::dup2(null_fd, 0);
    ::dup2(out_fd, 1);
    ::dup2(err_fd, 2);
    ::execve(img.argv[0], img.argv.data(), img.envp.data());
    const char msg[] = "execve failed\n";
    (void)!::write(2, msg, sizeof msg - 1);
    ::_exit(127);
  }
  if (null_fd >= 0) ::close(null_fd);
  return pid;
}

}  // namespace

std::string run_result::describe() const {
  std::string s = "exit " + std::to_string(exit_code) + (timed_out ? " (timed out)" : "");
  s += "\n--- stdout ---\n" + (out.size() > 4000 ? out.substr(0, 4000) + "..." : out);
  s += "\n--- stderr ---\n" + (err.size() > 4000 ? err.substr(0, 4000) + "..." : err);
  return s;
}

run_result run(const std::vector<std::string>& args, const env_list& env,
               std::chrono::milliseconds timeout) {
  std::vector<std::string> argv{berth_binary};
  argv.insert(argv.end(), args.begin(), args.end());
  exec_image img(argv, env);

  temp_dir capture;
  auto out_path = capture / "stdout", err_path = capture / "stderr";
  int out_fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int err_fd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out_fd < 0 || err_fd < 0) throw std::runtime_error("cannot create capture files");
  pid_t pid = spawn(img, out_fd, err_fd);
  ::close(out_fd);
  ::close(err_fd);

  run_result res;
  auto deadline = clock_type::now() + timeout;
  int st = 0;
  for (;;) {
    pid_t r = ::waitpid(pid, &st, WNOHANG);
    if (r == pid) {
      res.exit_code = decode_status(st);
      break;
    }
    if (r < 0 && errno != EINTR) break;
    if (clock_type::now() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &st, 0);
      res.timed_out = true;
      res.exit_code = -1;
      break;
    }
    std::this_thread::sleep_for(5ms);
  }
  res.out = read_file(out_path);
  res.err = read_file(err_path);
  return res;
}

process::~process() {
  if (running()) kill9();
}

void process::start(const std::vector<std::string>& argv, const env_list& env,
                    const std::string& log_path) {
  if (pid_ > 0 && running()) throw std::logic_error("process already running");
  exec_image img(argv, env);
  int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot open " + log_path);
  pid_ = spawn(img, fd, fd);
  ::close(fd);
  status_ = -1;
}

bool process::running() {
  if (pid_ <= 0) return false;
  int st = 0;
  pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = decode_status(st);
    pid_ = -1;
    return false;
  }
  return r == 0;
}

void process::signal(int sig) {
  if (pid_ > 0) ::kill(pid_, sig);
}

int process::wait(std::chrono::milliseconds timeout) {
  auto deadline = clock_type::now() + timeout;
  while (running()) {
    if (clock_type::now() >= deadline) return -1;
    std::this_thread::sleep_for(5ms);
  }
  return status_;
}

int process::kill9() {
  if (!running()) return status_;
  ::kill(pid_, SIGKILL);
  int st = 0;
  while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
  }
  status_ = decode_status(st);
  pid_ = -1;
  return status_;
}

// ---- server ---------------------------------------------------------------------------------

bool wait_healthy(uint16_t port, std::chrono::milliseconds timeout, process* proc) {
  auto deadline = clock_type::now() + timeout;
  while (clock_type::now() < deadline) {
    if (proc != nullptr && !proc->running()) return false;
    httplib::Client c("127.0.0.1", port);
    c.set_connection_timeout(0, 200000);
    c.set_read_timeout(2, 0);
    auto r = c.Get("/health");
    if (r && r->status == 200) return true;
    std::this_thread::sleep_for(25ms);
  }
  return false;
}

server::server(const std::string& dir, server_options opts, uint16_t port)
    : dir_(dir), opts_(std::move(opts)), port_(port != 0 ? port : free_port()) {
  start();
}

server::~server() {
  api_.reset();
  proc_.kill9();
  {
    std::lock_guard<std::mutex> lock(tokens_mutex());
    auto it = tokens().find(port_);
    if (it != tokens().end() && it->second == token_) tokens().erase(it);
  }
  kill_processes_in(dir_);
}


std::string server::log() const { return read_file(dir_ + "/server.log"); }

void server::start() {
  if (proc_.running()) return;
  api_.reset();
  std::vector<std::string> argv{berth_binary, "serve"};
  if (opts_.pass_listen) {
    argv.push_back("--listen");
    argv.push_back("127.0.0.1:" + std::to_string(port_));
  }
  if (opts_.pass_data) {
    argv.push_back("--data");
    argv.push_back(data_dir());
  }
  argv.insert(argv.end(), opts_.extra_args.begin(), opts_.extra_args.end());
  auto env = opts_.env;
  auto token_flag = std::find(argv.begin(), argv.end(), "--token");
  if (token_flag != argv.end() && token_flag + 1 != argv.end()) {
    token_ = *(token_flag + 1);
  } else if (opts_.env_has("BERTH_TOKEN")) {
    for (auto& [k, v] : opts_.env)
      if (k == "BERTH_TOKEN") token_ = v;
  } else if (opts_.pass_token) {
    token_ = test_token();
    env.emplace_back("BERTH_TOKEN", token_);
  } else {
    token_.clear();  // berth's own <data>/token, read once it is up
  }
  // Direct switch mode unless a test asks for the proxy: a Caddy per test server costs time,
  // and only the proxy tests are about it.
  if (std::find(argv.begin(), argv.end(), "--switch-mode") == argv.end() && !opts_.env_has("BERTH_SWITCH_MODE")) {
    argv.push_back("--switch-mode");
    argv.push_back("direct");
  }
  {
    std::ofstream mark(dir_ + "/server.log", std::ios::app);
    mark << "==== test harness: starting berth serve on port " << port_ << " ====\n";
  }
  proc_.start(argv, env, dir_ + "/server.log");
  if (!wait_healthy(port_, 20s, &proc_)) {
    bool alive = proc_.running();
    proc_.kill9();
    throw std::runtime_error("berth serve did not become healthy on port " +
                             std::to_string(port_) + (alive ? " within 20 s" : " (it exited, status " +
                                                          std::to_string(proc_.exit_status()) + ")") +
                             "\n--- server log ---\n" + log());
  }
  if (token_.empty()) {
    // Without a token given, berth serves with the one in <data>/token (made at first start).
    auto content = read_file(data_dir() + "/token");
    while (!content.empty() && (content.back() == '\n' || content.back() == '\r')) content.pop_back();
    token_ = content;
  }
  set_token_for(port_, token_);
}

int server::kill9() {
  api_.reset();
  return proc_.kill9();
}

int server::terminate(std::chrono::milliseconds timeout) {
  api_.reset();
  if (!proc_.running()) return proc_.exit_status();
  proc_.signal(SIGTERM);
  int st = proc_.wait(timeout);
  if (st == -1) proc_.kill9();
  return st;
}

client& server::api() {
  if (!api_) api_ = std::make_unique<client>(port_);
  return *api_;
}

json server::health() {
  auto r = api().get("/health");
  if (r.status != 200 || !r.body.is_object())
    throw std::runtime_error("GET /health failed: " + r.describe());
  return r.body;
}

json manifest_for(const std::string& name, const std::string& path) {
  return {{"name", name}, {"source", {{"path", path}}}};
}

}  // namespace berth::it
