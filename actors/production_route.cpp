#include "actors/production_route.hpp"

#include <caf/all.hpp>

#include "actors/names.hpp"
#include "messages/atoms.hpp"
#include "messages/errors.hpp"

namespace berth {

namespace {

constexpr auto ask_timeout = std::chrono::seconds(60);

template <class... Ts>
status ask_proxy(caf::actor_system& sys, Ts&&... xs) {
  auto proxy = names::whereis(sys, names::proxy);
  if (!proxy) return status::io_error("the proxy is not running");
  status result = status::io_error("no answer");
  caf::scoped_actor self{sys};
  self->request(proxy, ask_timeout, std::forward<Ts>(xs)...)
      .receive([&](bool) { result = status::ok(); }, [&](caf::error& err) { result = status::io_error(view(err).message); });
  return result;
}

}  // namespace

proxy_route production_route_of(const environment& env, uint16_t stable_port, uint16_t upstream,
                                std::vector<std::string> domains) {
  proxy_route r{env.project + "-production", env.project,
                site_host(env.settings.site, env.project, site_env::production), stable_port, upstream};
  r.domains = std::move(domains);
  return r;
}

status production_route::point(caf::actor_system& sys, const environment& env, uint16_t stable_port,
                               uint16_t upstream) {
  std::lock_guard<std::mutex> lock(m_);
  auto s = ask_proxy(sys, route_atom_v, production_route_of(env, stable_port, upstream, wanted_));
  // Even when the proxy did not confirm it may have taken it: a later sync() sends it again.
  upstream_ = upstream;
  sent_ = s ? std::optional<std::vector<std::string>>(wanted_) : std::nullopt;
  return s;
}

status production_route::take_away(caf::actor_system& sys, const environment& env) {
  std::lock_guard<std::mutex> lock(m_);
  upstream_ = 0;
  return ask_proxy(sys, unroute_atom_v, env.project + "-production");
}

void production_route::want(std::vector<std::string> domains) {
  std::lock_guard<std::mutex> lock(m_);
  wanted_ = std::move(domains);
}

status production_route::sync(caf::actor_system& sys, const environment& env, uint16_t stable_port) {
  std::lock_guard<std::mutex> lock(m_);
  if (upstream_ == 0 || sent_ == wanted_) return status::ok();
  auto s = ask_proxy(sys, route_atom_v, production_route_of(env, stable_port, upstream_, wanted_));
  if (s) sent_ = wanted_;
  return s;
}

void production_route::noted(uint16_t upstream, std::vector<std::string> domains) {
  std::lock_guard<std::mutex> lock(m_);
  upstream_ = upstream;
  sent_ = std::move(domains);
}

std::vector<std::string> production_route::wanted() const {
  std::lock_guard<std::mutex> lock(m_);
  return wanted_;
}

}  // namespace berth
