// Registered names of the long-lived actors. Restarted actors re-register, so callers look
// them up per use instead of keeping a handle that may point at a dead incarnation.
#pragma once
#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/atom.hpp>

namespace berth::names {

constexpr caf::atom_value event_store = caf::atom("evstore");
constexpr caf::atom_value ports = caf::atom("ports");
constexpr caf::atom_value projects = caf::atom("projects");
constexpr caf::atom_value proxy = caf::atom("proxy");  // only in proxy switch mode
constexpr caf::atom_value tls_front = caf::atom("tls_front");  // only with --sites-tls
constexpr caf::atom_value backends = caf::atom("backends");

inline caf::actor whereis(caf::actor_system& sys, caf::atom_value name) {
  return caf::actor_cast<caf::actor>(sys.registry().get(name));
}

}  // namespace berth::names
