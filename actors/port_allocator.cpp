#include "actors/port_allocator.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "actors/names.hpp"
#include "messages/atoms.hpp"
#include "messages/errors.hpp"
#include "runtime/net/ports.hpp"

namespace berth {

namespace {

constexpr auto store_timeout = std::chrono::seconds(30);

using self_ptr = caf::stateful_actor<port_allocator_state>*;

// Stable start slot from the name, then linear probing with wrap-around past ports that are
// leased or busy on the host.
uint16_t pick(const port_allocator_state& st, const port_range& range, const std::string& name) {
  size_t start = fnv1a64(name) % range.size();
  for (size_t i = 0; i < range.size(); ++i) {
    auto port = static_cast<uint16_t>(range.lo + (start + i) % range.size());
    if (st.leases.count(port) == 0 && port_is_free(port)) return port;
  }
  return 0;
}

std::vector<port_lease> leases_of(const port_allocator_state& st, const std::string& project) {
  std::vector<port_lease> out;
  for (auto& [port, lease] : st.leases)
    if (lease.project == project) out.push_back(lease);
  return out;
}

// Appends port_released for `leases`, then forgets them. Replies with the count.
caf::result<uint64_t> release(self_ptr self, std::vector<port_lease> leases,
                              const std::string& reason) {
  if (leases.empty()) return uint64_t{0};
  std::vector<new_event> events;
  for (auto& l : leases) events.push_back({ports_stream, ev::port_released, port_released_data(l, reason)});
  auto rp = self->make_response_promise<uint64_t>();
  // Candidates' leases need no sync of their own (see the candidate lease).
  bool candidates = std::all_of(leases.begin(), leases.end(), [](auto& l) { return l.kind == port_kind::candidate; });
  auto store = names::whereis(self->system(), names::event_store);
  auto sent = candidates ? self->request(store, store_timeout, append_unsynced_atom_v, std::move(events))
                         : self->request(store, store_timeout, append_atom_v, std::move(events));
  sent.then(
          [=](std::vector<event_record>&) mutable {
            for (auto& l : leases) self->state.leases.erase(l.port);
            rp.deliver(static_cast<uint64_t>(leases.size()));
          },
          [=](caf::error& err) mutable { rp.deliver(std::move(err)); });
  return rp;
}

}  // namespace

caf::behavior port_allocator(self_ptr self, port_range production, port_range preview) {
  self->state.production = production;
  self->state.preview = preview;
  // Rebuild the lease table before serving anything: .await holds other messages back.
  self->request(names::whereis(self->system(), names::event_store), store_timeout,
                read_stream_atom_v, std::string{ports_stream}, uint64_t{0},
                std::numeric_limits<uint64_t>::max())
      .await(
          [=](std::vector<event_record>& events) {
            for (auto& e : events) fold(self->state.leases, e);
            spdlog::info("port allocator: {} leases restored from {} events",
                         self->state.leases.size(), events.size());
          },
          [=](caf::error& err) { self->quit(err); });
  return {
      [=](lease_atom, const std::string& project) -> caf::result<port_assignment> {
        auto& st = self->state;
        auto existing = leases_of(st, project);
        if (!existing.empty()) {
          port_assignment a;
          for (auto& l : existing) {
            if (l.kind == port_kind::production) a.production = l.port;
            if (l.kind == port_kind::preview) a.preview = l.port;
          }
          if (a.production != 0 && a.preview != 0) return a;
        }
        port_lease prod{pick(st, st.production, project), project, port_kind::production};
        if (prod.port == 0) return make_error(errc::ports_exhausted, "no free production port");
        st.leases[prod.port] = prod;  // reserve now so concurrent leases probe past it
        port_lease prev{pick(st, st.preview, project), project, port_kind::preview};
        if (prev.port == 0) {
          st.leases.erase(prod.port);
          return make_error(errc::ports_exhausted, "no free preview port");
        }
        st.leases[prev.port] = prev;
        std::vector<new_event> events{
            {ports_stream, ev::port_leased, port_leased_data(prod)},
            {ports_stream, ev::port_leased, port_leased_data(prev)}};
        auto rp = self->make_response_promise<port_assignment>();
        self->request(names::whereis(self->system(), names::event_store), store_timeout,
                      append_atom_v, std::move(events))
            .then(
                [=](std::vector<event_record>&) mutable {
                  rp.deliver(port_assignment{prod.port, prev.port});
                },
                [=](caf::error& err) mutable {
                  self->state.leases.erase(prod.port);
                  self->state.leases.erase(prev.port);
                  rp.deliver(std::move(err));
                });
        return rp;
      },
      [=](lease_atom, const std::string& project, port_kind kind) -> caf::result<uint16_t> {
        auto& st = self->state;
        if (kind != port_kind::candidate)
          return make_error(errc::invalid_request, "only candidate ports are leased one by one");
        // Spread candidates over the range so a project's consecutive deploys rarely probe long.
        port_lease l{pick(st, st.preview, project + "#candidate#" + std::to_string(++st.candidates)),
                     project, kind};
        if (l.port == 0) return make_error(errc::ports_exhausted, "no free candidate port");
        st.leases[l.port] = l;
        // Answered at once, its event following in order and unsynced: the lease is taken here
        // (nobody else gets the port), a candidate does not outlive a power cut, and a restart
        // gives its project's candidate leases back anyway.
        self->request(names::whereis(self->system(), names::event_store), store_timeout, append_unsynced_atom_v,
                      std::vector<new_event>{{ports_stream, ev::port_leased, port_leased_data(l)}})
            .then([](std::vector<event_record>&) {},
                  [=](caf::error& err) { spdlog::error("port allocator: cannot record a lease: {}", to_string(err)); });
        return l.port;
      },
      [=](release_atom, uint16_t port, const std::string& reason) {
        auto it = self->state.leases.find(port);
        if (it == self->state.leases.end()) return caf::result<uint64_t>{uint64_t{0}};
        return release(self, {it->second}, reason);
      },
      [=](release_atom, const std::string& project, port_kind kind, const std::string& reason, uint16_t keep) {
        auto leases = leases_of(self->state, project);
        leases.erase(std::remove_if(leases.begin(), leases.end(),
                                    [&](auto& l) { return l.kind != kind || l.port == keep; }),
                     leases.end());
        return release(self, std::move(leases), reason);
      },
      [=](release_atom, const std::string& project, const std::string& reason) {
        return release(self, leases_of(self->state, project), reason);
      },
      [=](reconcile_atom, const std::vector<std::string>& live) {
        std::set<std::string> alive(live.begin(), live.end());
        std::vector<port_lease> orphans;
        for (auto& [port, lease] : self->state.leases)
          if (alive.count(lease.project) == 0) orphans.push_back(lease);
        if (!orphans.empty())
          spdlog::warn("port allocator: releasing {} leases of projects that do not exist",
                       orphans.size());
        return release(self, std::move(orphans), "orphaned");
      },
      [=](leases_atom) { return static_cast<uint64_t>(self->state.leases.size()); },
  };
}

}  // namespace berth
