// Internal to runtime/proxy/haproxy*.cpp: the names of the files and sockets in a router's
// dir (see haproxy.hpp), shared by the config writer and the runtime API client.
#pragma once
#include <algorithm>
#include <cctype>
#include <string>

namespace berth::haproxy_files {

inline std::string ports_map(const std::string& dir) { return dir + "/ports.map"; }
inline std::string hosts_map(const std::string& dir) { return dir + "/hosts.map"; }
inline std::string canary_map(const std::string& dir) { return dir + "/canary.map"; }
// Bound by berth's traffic meter (traffic_meter.hpp), not by HAProxy: HAProxy only sends to it.
inline std::string traffic_socket(const std::string& dir) { return dir + "/traffic.sock"; }
inline std::string master_socket(const std::string& dir) { return dir + "/master.sock"; }
inline std::string admin_socket(const std::string& dir) { return dir + "/admin.sock"; }
inline std::string config(const std::string& dir) { return dir + "/haproxy.cfg"; }

inline std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace berth::haproxy_files
