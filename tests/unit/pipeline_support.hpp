// Support for the deploy pipeline's unit tests (test_pipeline.cpp): a fake deploy_host that
// records what the pipeline asks of its owner, ports reserved for one test, a tiny python app
// and the fixture that runs run_deploy on it with the real process runtime.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "messages/deployment.hpp"
#include "runtime/driver.hpp"
#include "runtime/pipeline/deploy.hpp"
#include "runtime/resilience/backends.hpp"
#include "tests/unit/support.hpp"

namespace berth::test {

using namespace std::chrono_literals;

// ---- waiting and looking -------------------------------------------------------------------

// Polls `pred` every 10 ms until it holds or `timeout` passed; whether it held.
bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 10000ms);
// The process exists and is not a zombie.
bool pid_alive(int pid);
// GET http://127.0.0.1:<port><path>: the body of a 200 answer, nullopt otherwise.
std::optional<std::string> http_get(uint16_t port, const std::string& path = "/");

// ---- ports ----------------------------------------------------------------------------------

// Ports for one test, free when taken and each claimed by name (an abstract unix socket), so
// that test cases of this binary run side by side (ctest -j2) never share one. Below the kernel's ephemeral range,
// so no outgoing connection (a health probe) takes one either.
class port_block {
 public:
  explicit port_block(size_t n);
  ~port_block();
  port_block(const port_block&) = delete;
  port_block& operator=(const port_block&) = delete;
  uint16_t operator[](size_t i) const { return ports_.at(i); }
  size_t size() const { return ports_.size(); }

 private:
  std::vector<uint16_t> ports_;
  std::vector<int> locks_;
};

// The spare ports the fake hosts of one test lease from (shared: a release started by one
// deploy keeps its port while the next one runs).
struct port_pool {
  std::mutex mu;
  std::deque<uint16_t> free;
};

// ---- the fake owner ---------------------------------------------------------------------------

struct recorded_batch {
  std::vector<new_event> events;
  bool durable = false;
};

// deploy_host for tests. Records every call; folds the recorded events (seq and time assigned
// here, increasing) into a production_record that starts as the owner's was; thread-safe.
class fake_host final : public deploy_host {
 public:
  // `before`: production as folded before this deployment; the deployment_queued event of
  // `id` (= "<project>.<before.last_seq + 1>") is folded first.
  fake_host(std::string project, production_record before, port_pool& ports);

  const std::string& id() const { return id_; }

  // ---- set up by the test ----
  // Runs (on the recording thread, outside the host's lock) for each event as it is recorded.
  std::function<void(const new_event&)> on_event;
  // What serving() answers (default: what the fold says serves, as production:<name> answers).
  void set_serving(serving_release s);
  // What set_route answers.
  void set_route_result(status s);
  // record() refuses (io_error, nothing kept) every batch holding an event of this type.
  void refuse_batches_with(std::string type);
  void request_stop(stop_request r) { stop_.store(r); }
  void request_verdict(canary_verdict v) { verdict_.store(v); }

  // ---- deploy_host ----
  status record(std::vector<new_event> events, bool durable) override;
  stop_request stop_requested() const override { return stop_.load(); }
  serving_release serving() override;
  status set_route(uint16_t port) override;
  status set_split(const traffic_split& split) override;
  canary_verdict operator_verdict() const override { return verdict_.load(); }
  void canary_progress(const canary_status& now) override;
  std::vector<canary_status> progress() const;  // every canary_progress, in order
  status lease_port(uint16_t* port) override;
  void release_port(uint16_t port, const std::string& why) override;

  // ---- what happened ----
  std::vector<recorded_batch> batches() const;
  std::vector<new_event> events() const;      // every recorded event, in order
  std::vector<std::string> types() const;     // their types
  std::vector<std::string> phases() const;    // the phase events' phases ("preparing", …)
  // "lease <port>", "release <port>", "route <port>", "split <port> <percent>", "serving", in
  // call order.
  std::vector<std::string> ops() const;
  std::vector<uint16_t> leased() const;
  std::vector<uint16_t> released() const;
  production_record folded() const;
  deployment_record deployment() const;  // this deployment as folded
  // Data of the first (last) recorded event of that type; nullopt when there is none.
  std::optional<nlohmann::json> first(const std::string& type) const;
  std::optional<nlohmann::json> last(const std::string& type) const;
  size_t count(const std::string& type) const;

 private:
  void fold_locked(const std::string& stream, const std::string& type, const std::string& data);

  std::string project_, id_;
  port_pool& pool_;
  std::atomic<stop_request> stop_{stop_request::none};
  std::atomic<canary_verdict> verdict_{canary_verdict::none};
  std::vector<canary_status> progress_;
  mutable std::mutex mu_;
  std::optional<serving_release> serving_;
  status route_result_ = status::ok();
  std::string refused_type_;
  std::vector<recorded_batch> batches_;
  std::vector<std::string> ops_;
  production_record prod_;
  int64_t last_ts_ = 0;
};

// Position of `op` in `ops` (ops.size() when absent).
size_t index_of(const std::vector<std::string>& ops, const std::string& op);

// ---- the app ----------------------------------------------------------------------------------

// What the next deploy of the app builds. The build (python3 build.py) copies these into the
// release; the server (python3 server.py) reads them there.
struct app_options {
  std::string version = "v1";  // GET / answers it
  std::string mode = "normal";  // normal | crash (exits 3 at once) | health-500 (/health answers 500)
  uint16_t crash_on_port = 0;   // exits 3 when started with this PORT (0: never)
  bool build_fails = false;     // the build exits 7 instead
};

// Writes the app's source (server.py, build.py and the options) into `dir`.
void write_app(const std::filesystem::path& dir, const app_options& o);

// ---- the fixture --------------------------------------------------------------------------------

// One project ("shop") in a fresh data dir, driven with the real process runtime: a stable port
// and spare ports, and production as folded from what each deploy recorded.
class pipeline_fixture {
 public:
  pipeline_fixture();
  ~pipeline_fixture();

  temp_dir tmp{"berth-pipeline"};
  std::string project = "shop";
  std::filesystem::path data_dir, source;
  project_paths paths;
  std::shared_ptr<runtime_driver> driver;
  backend_guards guards;
  port_block ports{6};
  port_pool pool;
  uint16_t stable_port = 0;
  manifest spec;                 // the app's manifest (health every 20 ms, up to 10 s)
  production_record production;  // folded from every deploy run so far
  traffic_meter* meter = nullptr;  // the proxy's figures for canaries (none: a canary fails)

  // The inputs of the next deploy of the app written with `o` (its source is rewritten).
  deploy_inputs inputs(const app_options& o = {});
  // The inputs of a rollback to the kept release `target`.
  deploy_inputs rollback_to(const std::string& target);
  // A host for the next deployment, serving what production serves.
  std::unique_ptr<fake_host> host();
  // Runs the deploy; production becomes what the host folded.
  phase run(fake_host& h, const deploy_inputs& in);
  // Runs it on another thread; if it has not ended within `bound`, asks it to stop at once
  // (abandoned) and returns nullopt once it has.
  std::optional<phase> run_within(fake_host& h, const deploy_inputs& in, std::chrono::milliseconds bound);
  // inputs(o) + host() + run(); the host, to look at.
  std::unique_ptr<fake_host> deploy(const app_options& o, phase* end = nullptr);

  // The file the app appends its PORT to on every GET /health (PROBE_LOG in the env).
  std::filesystem::path probe_log() const { return tmp.path / "probes.log"; }
  // Running instances of the project's production (live releases and candidates).
  std::vector<instance_ref> running() const;
  // Release folders in production/ (12 hex chars).
  std::vector<std::string> release_dirs() const;
};

}  // namespace berth::test
