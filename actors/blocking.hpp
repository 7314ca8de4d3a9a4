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

// How the actor waits for the work: `then` it goes on with other messages meanwhile;
// `hold` it takes no other message until the work is done (start-up, before anything may
// depend on the work's result).
enum class while_blocked { go_on, hold };

// `then` receives "" or the message of an exception the work threw.
template <class Self>
void run_blocking(Self* self, std::function<void()> work, std::function<void(const std::string&)> then,
                  while_blocked mode = while_blocked::go_on) {
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
  auto handle = self->request(worker, caf::infinite, launch_atom_v);
  auto done = [then](std::string& failure) { then(failure); };
  auto failed = [then](caf::error& err) { then("worker failed: " + caf::to_string(err)); };
  if (mode == while_blocked::hold)
    handle.await(done, failed);
  else
    handle.then(done, failed);
}

}  // namespace berth
