// Runs blocking work (fork/exec, builds, probes, file trees) on a detached worker, never on a
// CAF scheduler thread, and continues in the calling actor when it is done. The work must not
// touch the actor's state; it communicates through what it captures (e.g. a shared_ptr the
// actor reads only after `then` runs).
#pragma once
#include <exception>
#include <functional>
#include <string>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "messages/atoms.hpp"

namespace berth {

// `then` receives "" or the message of an exception the work threw.
template <class Self>
void run_blocking(Self* self, std::function<void()> work, std::function<void(const std::string&)> then) {
  auto worker = self->template spawn<caf::detached>([work](caf::event_based_actor* w) -> caf::behavior {
    return {[=](launch_atom) -> std::string {
      w->quit();
      try {
        work();
        return "";
      } catch (const std::exception& e) {
        return std::string("unexpected error: ") + e.what();
      }
    }};
  });
  self->request(worker, caf::infinite, launch_atom_v)
      .then([then](std::string& failure) { then(failure); },
            [then](caf::error& err) { then("worker failed: " + caf::to_string(err)); });
}

}  // namespace berth
