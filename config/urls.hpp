// Where people reach a project's sites: one builder for every URL berth reports.
#pragma once
#include <cstdint>
#include <string>

namespace berth {

struct site_address {
  std::string scheme = "http";              // of the URLs berth reports
  std::string domain_suffix = "localhost";  // projects answer as <name>.<domain_suffix>
  uint16_t port = 0;                        // the shared listener's port; 0 = the scheme's own
};

enum class site_env : uint8_t { production, preview };

// shop.localhost | shop-preview.localhost
std::string site_host(const site_address& a, const std::string& project, site_env env);
// http://shop.localhost | https://shop.example.com | http://shop.localhost:18080 (a port
// that is not the scheme's default is part of the address)
std::string site_url(const site_address& a, const std::string& project, site_env env);
// http://127.0.0.1:<port>: how berth's own host reaches a port directly.
std::string local_url(uint16_t port);

}  // namespace berth
