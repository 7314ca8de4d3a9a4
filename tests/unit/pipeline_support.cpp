#include "tests/unit/pipeline_support.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>

#include <algorithm>
#include <future>
#include <random>
#include <thread>

#include <httplib.h>

#include "messages/project_state.hpp"
#include "runtime/files/layout.hpp"
#include "runtime/net/ports.hpp"
#include "runtime/pipeline/deploy_log.hpp"
#include "runtime/process/process_runtime.hpp"
#include "runtime/release/release.hpp"

namespace berth::test {

namespace {

int64_t wall_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The server: VERSION at /, "ok" (or 500 in mode health-500) at /health, each probe noted in
// $PROBE_LOG. Reads its options from the release folder it runs in.
constexpr const char* server_py = R"(import http.server, os, pathlib, sys
here = pathlib.Path(__file__).resolve().parent
def opt(name):
    p = here / name
    return p.read_text().strip() if p.exists() else ""
port = os.environ["PORT"]
mode = opt("MODE") or "normal"
if mode == "crash" or opt("CRASH_ON_PORT") == port:
    sys.exit(3)
version = opt("VERSION")
probes = os.environ.get("PROBE_LOG")
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code, body = 200, version
        if self.path == "/health":
            if probes:
                with open(probes, "a") as f:
                    f.write(port + "\n")
            code, body = (500, "unhealthy") if mode == "health-500" else (200, "ok")
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, fmt, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(port)), Handler).serve_forever()
)";

// The build: the options of the source become files of the release.
constexpr const char* build_py = R"(import pathlib, shutil, sys
src = pathlib.Path("options")
if (src / "build_fails").exists():
    print("the build fails on purpose", file=sys.stderr)
    sys.exit(7)
for name in ("VERSION", "MODE", "CRASH_ON_PORT"):
    shutil.copy(src / name, name)
print("built", (src / "VERSION").read_text())
)";

}  // namespace

bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
}

bool pid_alive(int pid) {
  if (pid <= 0) return false;
  auto stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

std::optional<std::string> http_get(uint16_t port, const std::string& path) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(2, 0);
  client.set_read_timeout(5, 0);
  auto res = client.Get(path.c_str());
  if (!res || res->status != 200) return std::nullopt;
  return res->body;
}

// ---- port_block ---------------------------------------------------------------------------------

namespace {

// Holds the name "berth-pipeline-port-<port>" in the abstract unix socket namespace: at most one
// process has it, and it goes with the socket (no file left behind). -1 when someone has it.
int claim(uint16_t port) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  auto name = "berth-pipeline-port-" + std::to_string(port);
  std::memcpy(addr.sun_path + 1, name.data(), name.size());  // sun_path[0] = 0: abstract
  auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

port_block::port_block(size_t n) {
  std::mt19937 rng(std::random_device{}());
  constexpr uint16_t first = 21000, count = 9000;
  auto start = static_cast<uint16_t>(rng() % count);
  for (uint16_t i = 0; i < count && ports_.size() < n; ++i) {
    auto port = static_cast<uint16_t>(first + (start + i * 7) % count);
    int fd = claim(port);
    if (fd < 0) continue;
    if (!port_is_free(port)) {
      ::close(fd);
      continue;
    }
    ports_.push_back(port);
    locks_.push_back(fd);
  }
  REQUIRE(ports_.size() == n);
}

port_block::~port_block() {
  for (int fd : locks_) ::close(fd);
}

// ---- fake_host ----------------------------------------------------------------------------------

fake_host::fake_host(std::string project, production_record before, port_pool& ports)
    : project_(std::move(project)), pool_(ports), prod_(std::move(before)) {
  deployment_job job;
  id_ = deployment_id(project_, prod_.last_seq + 1);
  fold_locked(project_stream(project_), event_type(phase::queued), deployment_queued_data(job));
}

void fake_host::fold_locked(const std::string& stream, const std::string& type, const std::string& data) {
  event_record e;
  e.seq = prod_.last_seq + 1;
  e.stream = stream;
  e.type = type;
  e.ts_us = last_ts_ = std::max(last_ts_ + 1, wall_us());
  e.data = data;
  fold(prod_, e);
  prod_.last_seq = e.seq;  // fold() moves it only for production's own events
}

void fake_host::set_serving(serving_release s) {
  std::lock_guard<std::mutex> lock(mu_);
  serving_ = std::move(s);
}

void fake_host::set_route_result(status s) {
  std::lock_guard<std::mutex> lock(mu_);
  route_result_ = std::move(s);
}

void fake_host::refuse_batches_with(std::string type) {
  std::lock_guard<std::mutex> lock(mu_);
  refused_type_ = std::move(type);
}

status fake_host::record(std::vector<new_event> events, bool durable) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ops_.push_back(durable ? "record durable" : "record");
    for (auto& e : events)
      if (!refused_type_.empty() && e.type == refused_type_) return status::io_error("the log refused the batch");
    for (auto& e : events) fold_locked(e.stream, e.type, e.data);
    batches_.push_back({events, durable});
  }
  if (on_event)
    for (auto& e : events) on_event(e);
  return status::ok();
}

serving_release fake_host::serving() {
  std::lock_guard<std::mutex> lock(mu_);
  ops_.push_back("serving");
  if (serving_) return *serving_;
  if (prod_.status != "running") return {};
  return {prod_.current, prod_.process};
}

status fake_host::set_route(uint16_t port) {
  std::lock_guard<std::mutex> lock(mu_);
  ops_.push_back("route " + std::to_string(port));
  return port == 0 ? status::ok() : route_result_;
}

status fake_host::set_split(const traffic_split& split) {
  std::lock_guard<std::mutex> lock(mu_);
  ops_.push_back("split " + std::to_string(split.port) + " " + std::to_string(split.percent));
  return status::ok();
}

void fake_host::canary_progress(const canary_status& now) {
  std::lock_guard<std::mutex> lock(mu_);
  progress_.push_back(now);
}

std::vector<canary_status> fake_host::progress() const {
  std::lock_guard<std::mutex> lock(mu_);
  return progress_;
}

status fake_host::lease_port(uint16_t* port) {
  std::lock_guard<std::mutex> lock(pool_.mu);
  if (pool_.free.empty()) return status::io_error("no spare port left");
  *port = pool_.free.front();
  pool_.free.pop_front();
  std::lock_guard<std::mutex> lock2(mu_);
  ops_.push_back("lease " + std::to_string(*port));
  return status::ok();
}

void fake_host::release_port(uint16_t port, const std::string&) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ops_.push_back("release " + std::to_string(port));
  }
  std::lock_guard<std::mutex> lock(pool_.mu);
  if (std::find(pool_.free.begin(), pool_.free.end(), port) == pool_.free.end()) pool_.free.push_back(port);
}

std::vector<recorded_batch> fake_host::batches() const {
  std::lock_guard<std::mutex> lock(mu_);
  return batches_;
}

std::vector<new_event> fake_host::events() const {
  std::vector<new_event> out;
  for (auto& b : batches())
    for (auto& e : b.events) out.push_back(e);
  return out;
}

std::vector<std::string> fake_host::types() const {
  std::vector<std::string> out;
  for (auto& e : events()) out.push_back(e.type);
  return out;
}

std::vector<std::string> fake_host::phases() const {
  std::vector<std::string> out;
  for (auto& e : events())
    if (phase p; phase_of_event(e.type, p)) out.push_back(to_string(p));
  return out;
}

std::vector<std::string> fake_host::ops() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ops_;
}

namespace {

std::vector<uint16_t> ports_of(const std::vector<std::string>& ops, const std::string& verb) {
  std::vector<uint16_t> out;
  for (auto& op : ops)
    if (op.rfind(verb + " ", 0) == 0) out.push_back(static_cast<uint16_t>(std::stoi(op.substr(verb.size() + 1))));
  return out;
}

}  // namespace

std::vector<uint16_t> fake_host::leased() const { return ports_of(ops(), "lease"); }
std::vector<uint16_t> fake_host::released() const { return ports_of(ops(), "release"); }

production_record fake_host::folded() const {
  std::lock_guard<std::mutex> lock(mu_);
  return prod_;
}

deployment_record fake_host::deployment() const { return folded().deployments.at(id_); }

std::optional<nlohmann::json> fake_host::first(const std::string& type) const {
  for (auto& e : events())
    if (e.type == type) return nlohmann::json::parse(e.data);
  return std::nullopt;
}

std::optional<nlohmann::json> fake_host::last(const std::string& type) const {
  std::optional<nlohmann::json> out;
  for (auto& e : events())
    if (e.type == type) out = nlohmann::json::parse(e.data);
  return out;
}

size_t fake_host::count(const std::string& type) const {
  auto t = types();
  return static_cast<size_t>(std::count(t.begin(), t.end(), type));
}

size_t index_of(const std::vector<std::string>& ops, const std::string& op) {
  return static_cast<size_t>(std::find(ops.begin(), ops.end(), op) - ops.begin());
}

// ---- the app ------------------------------------------------------------------------------------

void write_app(const std::filesystem::path& dir, const app_options& o) {
  write_file(dir / "server.py", server_py);
  write_file(dir / "build.py", build_py);
  write_file(dir / "options" / "VERSION", o.version);
  write_file(dir / "options" / "MODE", o.mode);
  write_file(dir / "options" / "CRASH_ON_PORT", o.crash_on_port ? std::to_string(o.crash_on_port) : "");
  std::filesystem::remove(dir / "options" / "build_fails");
  if (o.build_fails) write_file(dir / "options" / "build_fails", "");
}

// ---- pipeline_fixture ---------------------------------------------------------------------------

pipeline_fixture::pipeline_fixture() {
  data_dir = tmp.path / "data";
  source = tmp.path / "src";
  std::filesystem::create_directories(data_dir);
  paths = paths_for(data_dir.string(), project);
  REQUIRE(create_project_dirs(paths).is_ok());
  driver = make_process_runtime(data_dir.string());
  stable_port = ports[0];
  for (size_t i = 1; i < ports.size(); ++i) pool.free.push_back(ports[i]);
  spec.name = project;
  spec.source_path = source.string();
  spec.build_command = {"python3", "build.py"};
  spec.production_command = {"python3", "server.py"};
  spec.production_health.path = "/health";
  spec.production_health.interval_ms = 20;
  spec.production_health.timeout_s = 10;
}

pipeline_fixture::~pipeline_fixture() {
  for (auto& r : driver->list({project, "", ""})) driver->stop(r, 1000ms);
}

deploy_inputs pipeline_fixture::inputs(const app_options& o) {
  write_app(source, o);
  deploy_inputs in;
  in.project = project;
  in.id = deployment_id(project, production.last_seq + 1);
  in.spec = spec;
  in.paths = paths;
  in.env = {{"PROBE_LOG", probe_log().string()}};
  in.stable_port = stable_port;
  in.current = production.current;
  in.releases = production.releases;
  in.build_timeout = 60s;
  in.phase_timeout = 60s;
  in.stop_grace = 2000ms;
  in.drain = 100ms;
  return in;
}

deploy_inputs pipeline_fixture::rollback_to(const std::string& target) {
  auto in = inputs();
  in.kind = job_kind::rollback;
  in.target = target;
  return in;
}

std::unique_ptr<fake_host> pipeline_fixture::host() {
  return std::make_unique<fake_host>(project, production, pool);
}

phase pipeline_fixture::run(fake_host& h, const deploy_inputs& in) {
  REQUIRE(h.id() == in.id);
  deploy_log log(paths.deployment_log(in.id));
  auto end = run_deploy(h, {*driver, guards, log, nullptr, meter}, in);
  production = h.folded();
  return end;
}

std::optional<phase> pipeline_fixture::run_within(fake_host& h, const deploy_inputs& in,
                                                  std::chrono::milliseconds bound) {
  REQUIRE(h.id() == in.id);
  deploy_log log(paths.deployment_log(in.id));
  auto done = std::async(std::launch::async, [&] { return run_deploy(h, {*driver, guards, log, nullptr, meter}, in); });
  bool in_time = done.wait_for(bound) == std::future_status::ready;
  if (!in_time) h.request_stop(stop_request::abandoned);
  auto end = done.get();
  production = h.folded();
  return in_time ? std::optional<phase>(end) : std::nullopt;
}

std::unique_ptr<fake_host> pipeline_fixture::deploy(const app_options& o, phase* end) {
  auto in = inputs(o);
  auto h = host();
  auto result = run(*h, in);
  if (end) *end = result;
  return h;
}

std::vector<instance_ref> pipeline_fixture::running() const {
  std::vector<instance_ref> out;
  for (auto& r : driver->list({project, "production", ""}))
    if (driver->inspect(r).running()) out.push_back(r);
  return out;
}

std::vector<std::string> pipeline_fixture::release_dirs() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto& e : std::filesystem::directory_iterator(paths.production, ec))
    if (e.is_directory() && valid_release_hash(e.path().filename().string())) out.push_back(e.path().filename());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace berth::test
