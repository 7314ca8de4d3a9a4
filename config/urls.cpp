#include "config/urls.hpp"

namespace berth {

std::string site_host(const site_address& a, const std::string& project, site_env env) {
  return project + (env == site_env::preview ? "-preview." : ".") + a.domain_suffix;
}

std::string site_url(const site_address& a, const std::string& project, site_env env) {
  bool default_port = a.port == 0 || (a.scheme == "http" && a.port == 80) || (a.scheme == "https" && a.port == 443);
  return a.scheme + "://" + site_host(a, project, env) + (default_port ? "" : ":" + std::to_string(a.port));
}

std::string local_url(uint16_t port) { return "http://127.0.0.1:" + std::to_string(port); }

}  // namespace berth
