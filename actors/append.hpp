// Appending to the event log from an actor: through the event store, continuing in the actor
// with what was stored. If the log refuses, the actor quits: without the log berth cannot keep
// its promises (its supervisor restarts it, and it rebuilds its state from the log).
#pragma once
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/names.hpp"
#include "messages/atoms.hpp"

namespace berth {

// durable: replied once synced; otherwise written in order and synced by a later append.
template <class Self>
void append_events(Self* self, std::vector<new_event> events, bool durable, std::string who,
                   std::function<void(std::vector<event_record>&)> then) {
  auto store = names::whereis(self->system(), names::event_store);
  auto stored = [then](std::vector<event_record>& records) { then(records); };
  auto refused = [self, who](caf::error& err) {
    spdlog::error("{}: cannot record events: {}", who, to_string(err));
    self->quit(err);
  };
  constexpr auto timeout = std::chrono::seconds(30);
  if (durable)
    self->request(store, timeout, append_atom_v, std::move(events)).then(stored, refused);
  else
    self->request(store, timeout, append_unsynced_atom_v, std::move(events)).then(stored, refused);
}

}  // namespace berth
