// The runtime driver: how berth runs a release, a preview or a build, whatever runs it (OS
// processes today; Docker and Swarm behind the same verbs later). In the spirit of LevelDB's
// `DB`: a handful of verbs, each with its contract.
//
// Common to every verb: no actor code; calls may block (fork/exec, waits, image builds), so
// callers run them off CAF's scheduler threads; every implementation is thread-safe, and one
// instance serves the whole server (created by the actor tree, passed down). No verb assumes a
// pid or a local folder: an instance is known by the identity the driver gave it, which berth
// records in its events and hands back after a restart.
#pragma once
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "messages/instance.hpp"  // instance_ref: a started instance as berth records it
#include "messages/limits.hpp"    // resource_limits
#include "runtime/status.hpp"

namespace berth {

// Who an instance belongs to. Drivers attach these to what they start and list by them.
struct instance_labels {
  std::string project;  // "" = berth's own (the proxy)
  std::string env;      // production | preview | build | proxy
  std::string release;  // the release hash, for production ("" otherwise)
  std::string runtime;  // which driver runs it: "process" (or "") | "docker" | "swarm" (the
                        // manifest's `runtime`); a filter with "" matches every runtime
};

// A runnable form of a release, made by prepare(): the process driver runs the release folder
// itself; an image driver builds an image. Opaque to callers; recorded as `id`.
struct artifact {
  std::string id;
};

// The identity a project's instances run as, allocated once per project (the `sandbox_assigned`
// event) when berth is root. uid 0: none of its own (berth is not root, or no sandbox), so the
// instance keeps berth's ids inside a user namespace.
struct sandbox_identity {
  uint32_t uid = 0, gid = 0;
};

// How an instance is confined: what it sees of the host's files, and as whom it runs. Drivers
// map it onto their mechanism (the process driver: bubblewrap, runtime/process/sandbox.hpp;
// a container driver: volumes and --user). Paths are the host's; the instance sees them at the
// same place and nothing else of the data dir.
struct sandbox_spec {
  bool enabled = false;                         // false: runs as berth itself (berth's own: the proxy)
  sandbox_identity id;                          // its uid/gid when berth is root
  std::filesystem::path read_only;              // the release, seen read-only ("" = none)
  std::vector<std::filesystem::path> writable;  // a preview's src, a build's workspace
  std::filesystem::path data;                   // its private writable dir: HOME and BERTH_APP_DATA
};

// Container runtimes only (docker, swarm): what the manifest's `image`, `volumes` and
// `production.replicas` ask for. The process driver ignores it.
struct container_options {
  std::string base;                     // image.base: FROM of a generated Dockerfile; a preview runs in it
  uint16_t app_port = 0;                // image.port: the port the app listens on inside (0: `port`)
  std::vector<std::string> healthcheck; // image.healthcheck: argv run inside (swarm's task health; {} none)
  std::map<std::string, std::string> volumes;  // volume name -> path inside; kept across releases
  int replicas = 1;                     // swarm: tasks of the service
  std::string registry;                 // swarm: where images are pushed ("" = the server's default)
  std::string registry_auth;            // "user:password" for it ("" = none); never logged
};

// What to run.
struct instance_spec {
  instance_labels labels;
  artifact from;                               // what prepare() made ("" id: run in `workdir`)
  std::filesystem::path workdir;               // process driver: the folder it runs in
  std::vector<std::string> command;            // argv, never through a shell
  std::map<std::string, std::string> env;      // on top of the driver's minimal environment
  uint16_t port = 0;                           // the host port it answers on (PORT, unless env has it)
  std::filesystem::path log;                   // where its output goes ("" = nowhere)
  // Memory, CPU and process limits of the whole instance (0 fields: not limited). A driver
  // that cannot apply limits runs it without (limits_unavailable() says why).
  resource_limits limits;
  sandbox_spec sandbox;                        // where and as whom it runs (disabled: as berth)
  container_options container;                 // docker and swarm only
};

enum class instance_state {
  running,  // alive, and still the instance of that identity
  exited,   // it ended (exit code / signal when known)
  gone,     // nothing of that identity exists any more (or it is someone else now)
};

struct instance_status {
  instance_state state = instance_state::gone;
  int exit_code = -1;  // exited normally: 0-255; -1 when killed by a signal or unknown
  int signal = 0;      // killed by a signal: its number
  bool oom = false;    // exited, and the kernel killed (part of) it for going over its memory limit
  bool running() const { return state == instance_state::running; }
  // "running" | "exited with code 3" | "killed by signal 9" | "exited" (code unknown) | "gone";
  // "killed: out of memory (over its memory limit)" when oom
  std::string describe() const;
};

struct resource_usage {
  double cpu_seconds = 0;  // user + system, every process of the instance
  uint64_t rss_bytes = 0;  // resident memory, every process of the instance
  uint32_t processes = 0;
  bool from_cgroup = false;   // read from the instance's cgroup (memory: its charge, cache included)
  resource_limits limits;     // the limits the kernel applies to it (all 0: none)
};

using exit_callback = std::function<void(const instance_status&)>;

class runtime_driver {
 public:
  virtual ~runtime_driver() = default;
  virtual const char* name() const = 0;  // "process" | "docker" | "swarm" | "runtimes"

  // Makes a runnable artifact of the release folder `spec.from.id` for `spec` (the process
  // driver: the folder itself, no copy; docker: an image, built only if it is not there yet).
  // Build output, if any, goes to `output` as whole lines (without '\n'), on the caller's
  // thread. `cancelled` is polled: true ends the build (io_error). Errors: not_found (no such
  // folder), invalid_argument (the build failed: the release's fault, not retried), io_error
  // (the engine is down or erred: transient).
  virtual status prepare(const instance_spec& spec, const std::function<void(const std::string&)>& output,
                         const std::function<bool()>& cancelled, artifact* out) = 0;
  // Removes what prepare() made of that release of the project (a pruned release). Ok when
  // there is nothing.
  virtual status remove_artifact(const instance_labels& labels) = 0;
  // The releases of `project` this driver keeps an artifact of (docker: the release images),
  // whoever made them: at start-up berth removes those its log does not know (remove_artifact).
  // The engine down: none.
  virtual std::vector<std::string> artifacts(const std::string& project) const { return {}; }
  // Removes everything the driver keeps for a deleted project beyond its instances (docker:
  // images, volumes, build cache; swarm: services). Its instances are stopped first by the
  // caller. Ok when there is nothing; io_error when the engine cannot be reached.
  virtual status remove_project(const std::string& project) { return status::ok(); }

  // Starts an instance; returns once it has been started (not once it is healthy). Errors:
  // not_found (program or folder missing), invalid_argument (bad spec), io_error (transient).
  virtual status start(const instance_spec& spec, instance_ref* out) = 0;
  // Asks the instance to stop, waits up to `grace`, then kills it and everything it started.
  // Ok when it is already gone; a recorded identity that now names someone else is left alone.
  virtual status stop(const instance_ref& ref, std::chrono::milliseconds grace) = 0;
  // What the instance of this recorded identity is doing now. Never blocks; this is how an
  // instance recorded before a restart is adopted (running) or found dead.
  virtual instance_status inspect(const instance_ref& ref) const = 0;
  // Instances of this driver whose labels match every non-empty field of `filter` (an empty
  // filter: all of them), whoever started them (this berth or an earlier one over the same data
  // dir; never another berth's): what a restart sweeps. Each ref has `project` set.
  virtual std::vector<instance_ref> list(const instance_labels& filter) const = 0;

  // Exit notification: `on_exit` runs once, on the driver's own thread (one callback at a time:
  // keep it short, never block), when the instance ends; at once, on the caller's thread, if it
  // already has. Returns a token for unwatch(); a second watch of the same instance replaces the
  // first, so there is never more than one per instance, and no thread per watch.
  virtual uint64_t watch(const instance_ref& ref, exit_callback on_exit) = 0;
  // Cancels a watch: its callback does not run afterwards. It does not wait for a callback
  // already running, so what the callback captures must outlive it (hold it by shared_ptr).
  virtual void unwatch(uint64_t token) = 0;

  // The last `lines` lines the instance wrote (oldest first); `spec` is what it was started
  // with. Missing or empty output: no lines.
  virtual std::vector<std::string> logs(const instance_spec& spec, const instance_ref& ref, size_t lines) const = 0;
  // CPU and memory of the instance now (from its cgroup when it has one). not_found when it is
  // not running.
  virtual status usage(const instance_ref& ref, resource_usage* out) const = 0;

  // "" when start() applies instance_spec::limits; else why it cannot (then it runs instances
  // unlimited, and berth refuses manifests that set limits). Fixed for the driver's lifetime.
  virtual std::string limits_unavailable() const { return "this runtime driver does not apply limits"; }
  // "" when instances with labels.runtime == `runtime` can run here; else why not (the engine
  // is off, a runtime that does not exist). Fixed for the driver's lifetime.
  virtual std::string runtime_unavailable(const std::string& runtime) const {
    return runtime == name() || (runtime.empty() && std::string(name()) == "process") ? ""
                                                                                      : "not run by this driver";
  }
};

// What GET views show of a running instance: driver.usage(ref) as a usage_view (known = false
// when the instance is not running or has no ref), at most usage_max_age (200 ms) old: sampled
// at most that often per instance (runtime/usage_cache.hpp). Reads a few small files at most:
// callable in actors.
usage_view usage_view_of(const runtime_driver& driver, const instance_ref& ref);

}  // namespace berth
