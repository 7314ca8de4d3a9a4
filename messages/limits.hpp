// Resource limits of an environment (manifest `preview|build|production.limits`) and what an
// instance uses (GET …/production, …/preview). The manifest keeps what was given (0 = the
// default); effective_limits() fills in the defaults; the runtime driver applies the result
// (0 there = not limited).
#pragma once
#include <cstdint>
#include <string>

#include <caf/meta/type_name.hpp>
#include <nlohmann/json.hpp>

namespace berth {

struct resource_limits {
  int memory_mb = 0;  // memory (RAM) in MiB; 0 = default / not limited
  double cpu = 0;     // cores, fractional (0.5 = half a core of CPU time); 0 = default / none
  int pids = 0;       // processes and threads; 0 = default / not limited
  bool any() const { return memory_mb > 0 || cpu > 0 || pids > 0; }
  bool operator==(const resource_limits& o) const {
    return memory_mb == o.memory_mb && cpu == o.cpu && pids == o.pids;
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, resource_limits& x) {
  return f(caf::meta::type_name("resource_limits"), x.memory_mb, x.cpu, x.pids);
}

// Bounds of the manifest fields (inclusive); outside them a manifest is refused.
constexpr int kMinMemoryMb = 16, kMaxMemoryMb = 1 << 20;  // 16 MiB .. 1 TiB
constexpr double kMinCpu = 0.01, kMaxCpu = 1024;          // cgroups' smallest quota .. 1024 cores
constexpr int kMinPids = 8, kMaxPids = 4194304;           // .. the kernel's pid_max ceiling

// The defaults: production and preview 512 MiB, 1 core, 512 pids; builds 2048 MiB, 2 cores,
// 1024 pids (compilers and bundlers are hungrier than the apps they make).
resource_limits default_limits(const std::string& env);  // "production" | "preview" | "build"
// `given` with its unset (0) fields taken from default_limits(env).
resource_limits effective_limits(const resource_limits& given, const std::string& env);

// What an instance uses now, as the GET views show it.
struct usage_view {
  bool known = false;          // false: not running, or the driver could not tell
  bool from_cgroup = false;    // read from its cgroup (else summed over its processes)
  uint64_t memory_bytes = 0;   // the cgroup's charge (RSS + page cache) or the processes' RSS
  double cpu_seconds = 0;      // user + system
  uint32_t processes = 0;
  resource_limits limits;      // as the kernel applies them (all 0: none)
};

// {"memory_mb", "cpu", "pids"} with the set fields only.
nlohmann::json to_json(const resource_limits& l);
// {"memory_bytes", "cpu_seconds", "processes", "source": "cgroup"|"processes", "limits"}, or null.
nlohmann::json to_json(const usage_view& u);

}  // namespace berth
