#include "actors/domain_index.hpp"

#include <algorithm>

namespace berth {

namespace {
bool has(const std::vector<std::string>& list, const std::string& d) {
  return std::find(list.begin(), list.end(), d) != list.end();
}
}  // namespace

std::optional<domain_index::claim> domain_index::taken(const std::vector<std::string>& domains,
                                                       const std::string& project) const {
  for (size_t i = 0; i < domains.size(); ++i) {
    for (auto& [owner, list] : committed_)
      if (owner != project && has(list, domains[i])) return claim{i, owner};
    for (auto& [ticket, held] : held_)
      if (held.first != project && has(held.second, domains[i])) return claim{i, held.first};
  }
  return std::nullopt;
}

void domain_index::commit(const std::string& project, std::vector<std::string> domains) {
  if (domains.empty())
    committed_.erase(project);
  else
    committed_[project] = std::move(domains);
}

uint64_t domain_index::hold(const std::string& project, std::vector<std::string> domains) {
  auto ticket = next_ticket_++;
  held_[ticket] = {project, std::move(domains)};
  return ticket;
}

void domain_index::release(uint64_t ticket) { held_.erase(ticket); }

void domain_index::forget(const std::string& project) {
  committed_.erase(project);
  for (auto it = held_.begin(); it != held_.end();)
    it = it->second.first == project ? held_.erase(it) : std::next(it);
}

std::vector<std::string> domain_index::of(const std::string& project) const {
  auto it = committed_.find(project);
  return it == committed_.end() ? std::vector<std::string>{} : it->second;
}

}  // namespace berth
