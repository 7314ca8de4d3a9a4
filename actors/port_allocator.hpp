// Host-wide port leases. State = fold of the `ports` stream, so after a restart no port is
// handed out twice. Messages:
//   (lease_atom, project)                  -> port_assignment   (idempotent per project)
//   (lease_atom, project, port_kind::candidate) -> uint16_t   (a new spare port each time)
//   (release_atom, project, reason)        -> uint64_t ports released
//   (release_atom, uint16_t port, reason)  -> uint64_t (0 or 1)
//   (release_atom, project, kind, reason, uint16_t keep) -> uint64_t   (e.g. a crashed job's
//                                           candidates; `keep` is the port the live release uses)
//   (reconcile_atom, vector<string> live)  -> uint64_t leases released for projects not in `live`
//   (leases_atom)                          -> uint64_t number of leased ports
#pragma once
#include <set>
#include <string>

#include <caf/all.hpp>

#include "config/config.hpp"
#include "messages/project_state.hpp"

namespace berth {

struct port_allocator_state {
  port_table leases;  // committed leases and those whose append is in flight
  port_range production;
  port_range preview;
  uint64_t candidates = 0;  // varies the start slot of candidate leases
  static inline const char* name = "port_allocator";
};

caf::behavior port_allocator(caf::stateful_actor<port_allocator_state>* self,
                             port_range production, port_range preview);

}  // namespace berth
