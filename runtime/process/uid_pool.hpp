// The sandbox uids of the live projects (berth is root): each project holds one uid (its gid is
// the same number) from a configured range, for as long as it exists. Pure bookkeeping, filled
// from the log (project_created / sandbox_assigned) and by allocations the caller records
// there. Not thread-safe: owned by the projects actor.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace berth {

class uid_pool {
 public:
  uid_pool(uint32_t lo, uint32_t hi) : lo_(lo), hi_(hi) {}
  uint32_t lo() const { return lo_; }
  uint32_t hi() const { return hi_; }
  // A uid the log gives `project`. False (and nothing changes) when another project holds it
  // already: the caller assigns that project a new one.
  bool hold(const std::string& project, uint32_t uid);
  // The lowest free uid of the range, now held by `project` (its current one if it has one);
  // nullopt when every uid of the range is held.
  std::optional<uint32_t> take(const std::string& project);
  // The project is gone: its uid is free again.
  void give_back(const std::string& project);
  // The uid `project` holds; 0 when none.
  uint32_t of(const std::string& project) const;

 private:
  uint32_t lo_, hi_;
  std::map<uint32_t, std::string> owner_;
  std::map<std::string, uint32_t> uid_;
};

}  // namespace berth
