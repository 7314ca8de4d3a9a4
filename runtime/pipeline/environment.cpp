// The environments a deploy gives its processes (deploy.hpp): production's and its build's.
#include "runtime/pipeline/deploy.hpp"

namespace berth {

namespace {

void add_identity(std::map<std::string, std::string>& env, const std::string& project) {
  env["BERTH_PROJECT"] = project;
  env["BERTH_ENV"] = "production";
}

}  // namespace

std::map<std::string, std::string> release_environment(const manifest& spec, const std::string& project,
                                                       const std::map<std::string, std::string>& secrets) {
  auto env = spec.env;
  for (auto& [k, v] : secrets) env[k] = v;
  add_identity(env, project);
  return env;
}

std::map<std::string, std::string> build_environment(const manifest& spec, const std::string& project,
                                                     const std::map<std::string, std::string>& secrets) {
  auto env = spec.env;
  for (auto& name : spec.build_secrets)
    if (auto it = secrets.find(name); it != secrets.end()) env[name] = it->second;
  add_identity(env, project);
  return env;
}

}  // namespace berth
