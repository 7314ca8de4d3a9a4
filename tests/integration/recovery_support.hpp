// Helpers for the crash-recovery tests (test_recovery.cpp, test_soak.cpp): one berth with the
// sample site deployed, kill -9 and restarts, and checks that nothing was left behind.
#pragma once
#include <sys/types.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "tests/integration/deploy_support.hpp"
#include "tests/integration/harness.hpp"

namespace berth::it {

// A fast reconciler and fast restarts, so that tests see them within seconds.
extern const std::vector<std::string> quick;
// `a` followed by `b`.
std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& b);
// How many of `events` are of `type`.
size_t count_type(const json& events, const std::string& type);

// Process group of a live process (0 when it is gone).
pid_t pgid_of(pid_t pid);

// One berth (direct mode unless `extra` says otherwise) in its own temp dir, and a project
// `name` made from the sample site.
struct site_env {
  temp_dir tmp;
  std::unique_ptr<server> srv;
  std::string name;
  std::string site;  // the site's source folder

  explicit site_env(const std::string& project, std::vector<std::string> extra = {});
  client& api() { return srv->api(); }
  std::string prod_dir() const { return srv->projects_dir() + "/" + name + "/production"; }

  // Starts a deploy (202) and returns its id; "" with the answer in *why when refused.
  std::string deploy(bool force = false, std::string* why = nullptr);
  // Deploys VERSION `version` and requires it to complete and serve.
  void deploy_version(const std::string& version);
  json production();                  // GET production (throws on non-200)
  uint16_t stable_port();
  json events();                      // the project's events (all)
  // Ids of every deployment the log knows, in order.
  std::vector<std::string> deployment_ids();
  // Process groups under production/ other than the production process's own.
  std::vector<proc_info> strays();
  // `berth audit verify` on the data dir ("" = passed, else what it printed).
  std::string audit_failure();
};

}  // namespace berth::it
