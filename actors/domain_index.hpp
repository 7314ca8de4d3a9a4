// Which project has which custom domain, kept by the projects actor (one thread: a check and
// the claim that follows it are one step, so two creates naming one domain cannot both win).
// A project's domains are those of its manifest plus those of its updates still in flight, so
// an update cannot lose a domain to a create that arrives while it is being recorded.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace berth {

class domain_index {
 public:
  struct claim {
    size_t index = 0;     // of the domain in the list asked about
    std::string project;  // the project that has it
  };
  // The first of `domains` another project than `project` has (committed or held), if any.
  // Pure lookup; O(all domains), which stays small (20 a project).
  std::optional<claim> taken(const std::vector<std::string>& domains, const std::string& project) const;

  // `project`'s manifest names `domains` (created, read back at start, updated): replaces
  // what it had committed.
  void commit(const std::string& project, std::vector<std::string> domains);
  // An update of `project` naming `domains` is in flight: they count as its own until
  // release(ticket). Returns the ticket.
  uint64_t hold(const std::string& project, std::vector<std::string> domains);
  // The update of `ticket` ended (commit what it recorded separately, if it succeeded).
  void release(uint64_t ticket);
  // The project is gone (deleted, or its creation failed): everything it had is free.
  void forget(const std::string& project);

  // What `project` has committed (empty when unknown).
  std::vector<std::string> of(const std::string& project) const;

 private:
  std::map<std::string, std::vector<std::string>> committed_;
  std::map<uint64_t, std::pair<std::string, std::vector<std::string>>> held_;
  uint64_t next_ticket_ = 1;
};

}  // namespace berth
