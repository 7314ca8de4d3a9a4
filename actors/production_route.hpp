// Proxy mode: the production route of one project (its stable port, its host and its custom
// domains → the serving release's port), as production last gave it to the proxy. Shared by
// every thread that changes it - the pipeline's worker (switch), the keeper (starts, a release
// that died), production/stop, and a manifest update that changes the custom domains - and
// changed under one lock: new domains are sent with the port the last change left, never with
// a port a switch running at the same time has just moved away from.
#pragma once
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>

#include "actors/environment.hpp"
#include "messages/proxy.hpp"
#include "runtime/status.hpp"

namespace berth {

// The route production:<project> asks the proxy for: <project>-production, its site host,
// the stable port as listener, `upstream` (0: none) and the custom domains.
proxy_route production_route_of(const environment& env, uint16_t stable_port, uint16_t upstream,
                                std::vector<std::string> domains);

class production_route {
 public:
  explicit production_route(std::vector<std::string> domains) : wanted_(std::move(domains)) {}

  // Points the route at 127.0.0.1:<upstream> (0: none) with the current domains, and waits
  // until the proxy serves it. Blocking; io_error when the proxy did not take it.
  status point(caf::actor_system& sys, const environment& env, uint16_t stable_port, uint16_t upstream);
  // Takes the route away (production/stop), waiting for the proxy. Blocking.
  status take_away(caf::actor_system& sys, const environment& env);
  // The manifest's domains (changed): every route sent from now on carries them. Does not block.
  void want(std::vector<std::string> domains);
  // A route that points at a release with other domains than wanted is sent again with them.
  // Blocking (at once when there is nothing to send). Workers that call it in any order end
  // with the last wanted domains in the proxy.
  status sync(caf::actor_system& sys, const environment& env, uint16_t stable_port);

  // A route sent by other means (the start-up re-route of an adopted release), with the
  // domains it carried: noted, so that sync() knows what the proxy has.
  void noted(uint16_t upstream, std::vector<std::string> domains);
  std::vector<std::string> wanted() const;

 private:
  mutable std::mutex m_;
  std::vector<std::string> wanted_;  // the manifest's
  std::optional<std::vector<std::string>> sent_;  // in the route last sent (none: not confirmed)
  uint16_t upstream_ = 0;            // 0: no upstream (or none sent by this incarnation yet)
};

}  // namespace berth
