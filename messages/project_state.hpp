// A project's state is the fold of its event stream `project/<name>`; the port leases are the
// fold of the `ports` stream. Both folds are pure so `berth audit replay` uses them offline.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include <caf/meta/type_name.hpp>
#include <nlohmann/json.hpp>

#include "messages/deployment.hpp"
#include "messages/event.hpp"
#include "messages/manifest.hpp"
#include "messages/preview.hpp"
#include "messages/source.hpp"

namespace berth {

// Event types, one per thing that happened.
namespace ev {
constexpr const char* project_created = "project_created";
constexpr const char* project_updated = "project_updated";
constexpr const char* project_deleted = "project_deleted";
// The project's own uid/gid for its sandboxed processes (berth is root), for a project created
// without one (by an older berth); a new project's is in its project_created. Kept until the
// project is deleted.
constexpr const char* sandbox_assigned = "sandbox_assigned";
constexpr const char* project_broken = "project_broken";        // {reason}: parked, retried with backoff
constexpr const char* project_recovered = "project_recovered";  // {was}: started fine again
constexpr const char* port_leased = "port_leased";
constexpr const char* port_released = "port_released";
}  // namespace ev

inline std::string project_stream(const std::string& name) { return "project/" + name; }
constexpr const char* ports_stream = "ports";
constexpr const char* project_stream_prefix = "project/";

// The project itself: its manifest, ports and times. The fold of the project_* events of
// `project/<name>` (what the project actor folds).
struct project_record {
  bool exists = false;
  std::string name;
  manifest spec;  // secret values are masked: they live in the project's 0600 file
  uint16_t production_port = 0;
  uint16_t preview_port = 0;
  int64_t created_us = 0;
  int64_t updated_us = 0;
  uint32_t sandbox_uid = 0, sandbox_gid = 0;  // 0: none assigned (berth not root, or sandbox off)
  source_view source;  // workspace projects: the tree as its last source_updated left it
};
// project_created or project_deleted: what was folded of an earlier project of that name goes.
inline bool starts_over(const event_record& e) {
  return e.type == ev::project_created || e.type == ev::project_deleted;
}

// Folds project_created / project_updated / project_deleted / sandbox_assigned / source_updated;
// ignores every other event.
void fold(project_record& s, const event_record& e);

// Everything folded from `project/<name>`: what `berth audit replay` prints. The live actors
// each fold their own part (project, preview, production), never the same event twice.
struct project_state : project_record {
  preview_record preview;
  production_record production;  // releases, deployments, the production process
  uint64_t last_seq = 0;  // seq of the last event folded
  int64_t last_us = 0;    // its time
  uint64_t events = 0;    // events folded since creation
};

// Folds one event of `project/<name>` into the state.
void fold(project_state& s, const event_record& e);

// Event payloads.
// sandbox_uid/gid: the project's own ids (0: none), recorded with its creation.
std::string project_created_data(const manifest& m, uint16_t production_port,
                                 uint16_t preview_port, uint32_t sandbox_uid = 0, uint32_t sandbox_gid = 0);
std::string project_updated_data(const manifest& m);
std::string sandbox_assigned_data(uint32_t uid, uint32_t gid);
// source_updated: the tree's hash, files and bytes, what changed it (via) and the file (path).
std::string source_updated_data(const std::string& hash, uint64_t files, uint64_t bytes, const std::string& via,
                                const std::string& path = "");

// production: the stable port; preview: the dev service; candidate: a release on trial
// during a deploy (from the preview range, released when the job ends).
enum class port_kind : uint8_t { production, preview, candidate };
const char* to_string(port_kind k);

struct port_lease {
  uint16_t port = 0;
  std::string project;
  port_kind kind = port_kind::production;
};

// The two ports a project holds.
struct port_assignment {
  uint16_t production = 0;
  uint16_t preview = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, port_assignment& x) {
  return f(caf::meta::type_name("port_assignment"), x.production, x.preview);
}

// port -> lease; the fold of the `ports` stream.
using port_table = std::map<uint16_t, port_lease>;
void fold(port_table& t, const event_record& e);
std::string port_leased_data(const port_lease& l);
std::string port_released_data(const port_lease& l, const std::string& reason);

}  // namespace berth
