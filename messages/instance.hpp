// A running instance (a release, a preview, Caddy) as events record it. What the identity means
// is the runtime driver's business (runtime/driver.hpp); the log only keeps it, so that a
// restarted berth can hand it back to the driver and adopt the instance.
//
// JSON form: {"instance": "<id>", "pid": <pid>, "port": <port>}. Records written before the
// runtime driver existed carry {"pid", "start_time", "pgid", "port"} (the process driver's
// identity, which the old `preview_launched` record held); instance_from() reads both.
#pragma once
#include <cstdint>
#include <string>

#include <caf/meta/type_name.hpp>
#include <nlohmann/json.hpp>


namespace berth {

// A started instance as berth records it: enough to find it again after a restart.
struct instance_ref {
  std::string id;     // the driver's identity for it ("" = none)
  uint16_t port = 0;  // the host port it answers on
  int pid = 0;        // for people reading status (0 when the driver has no such thing)
  std::string project;  // runtime_driver::list() only: whose it is by its labels (never recorded)
  bool empty() const { return id.empty(); }
  bool operator==(const instance_ref& o) const { return id == o.id; }
  bool operator!=(const instance_ref& o) const { return id != o.id; }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, instance_ref& x) {
  return f(caf::meta::type_name("instance_ref"), x.id, x.port, x.pid, x.project);
}

// The process driver's identity of a process: "<pid>:<start time>:<process group>". Here so
// that records in the old shape can be read without asking the driver.
std::string process_instance_id(int pid, uint64_t start_time, int pgid);
bool parse_process_instance_id(const std::string& id, int* pid, uint64_t* start_time, int* pgid);

nlohmann::json to_json(const instance_ref& r);
// From a record's data; an empty ref when it names no instance.
instance_ref instance_from(const nlohmann::json& data);

}  // namespace berth
