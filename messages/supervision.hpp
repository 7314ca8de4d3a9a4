// Supervision vocabulary: child specs are data (OTP style); the supervisor actor interprets them.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/meta/type_name.hpp>

namespace caf {
class actor_system;
}

namespace berth {

// permanent: always restarted; transient: restarted only after an abnormal exit;
// temporary: never restarted.
enum class restart_type : uint8_t { permanent, transient, temporary };

// one_for_one: restart only the child that died; one_for_all: stop the others and
// restart all children in start order.
enum class restart_strategy : uint8_t { one_for_one, one_for_all };

struct child_spec {
  std::string id;
  // Spawns the child (unlinked); the supervisor links it. Must not block.
  std::function<caf::actor(caf::actor_system&)> start;
  restart_type restart = restart_type::permanent;
};

struct supervisor_flags {
  restart_strategy strategy = restart_strategy::one_for_one;
  // More than `intensity` restarts within `period` make the supervisor give up and
  // exit with errc::restart_intensity, so its own parent decides.
  int intensity = 3;
  std::chrono::milliseconds period{5000};
};

// Figures the event_store reports.
struct log_stats {
  uint64_t last_seq = 0;
  uint64_t commits = 0;       // synced WriteBatches written by this process
  uint64_t appended = 0;      // events appended by this process
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, log_stats& x) {
  return f(caf::meta::type_name("log_stats"), x.last_seq, x.commits, x.appended);
}

}  // namespace berth

// A child_spec carries a std::function; it only ever travels between local actors.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(berth::child_spec)
