// Preview environment vocabulary: what happened to a project's dev service. Persisted in the
// project's stream, so a restarted berth knows whether the preview should be running and
// which process (pid + start time) was its own.
#pragma once
#include <cstdint>
#include <string>

#include <caf/meta/type_name.hpp>
#include <nlohmann/json.hpp>

namespace berth {

namespace ev {
constexpr const char* preview_started = "preview_started";
constexpr const char* preview_stopped = "preview_stopped";
constexpr const char* preview_crashed = "preview_crashed";
}  // namespace ev

// A preview process is up and passed its health check.
struct preview_launched {
  int pid = 0;
  uint64_t start_time = 0;
  int pgid = 0;
  uint16_t port = 0;
};

// A process berth watched has ended.
struct process_exited {
  int pid = 0;
  uint64_t start_time = 0;
  int exit_code = -1;
  int term_signal = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, preview_launched& x) {
  return f(caf::meta::type_name("preview_launched"), x.pid, x.start_time, x.pgid, x.port);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, process_exited& x) {
  return f(caf::meta::type_name("process_exited"), x.pid, x.start_time, x.exit_code, x.term_signal);
}

std::string describe(const process_exited& x);  // "exited with code 3" / "killed by signal 9"

// The preview's desired and last known state, folded from its events.
struct preview_record {
  std::string status = "stopped";  // stopped | running | crashed
  preview_launched process;        // valid while running
  std::string reason;              // why it crashed
};

nlohmann::json to_json(const preview_launched& x);
preview_launched preview_launched_from(const nlohmann::json& j);

}  // namespace berth
