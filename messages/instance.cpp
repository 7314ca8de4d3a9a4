#include "messages/instance.hpp"

#include <cstdio>
#include <cinttypes>

#include <fmt/format.h>

namespace berth {

std::string process_instance_id(int pid, uint64_t start_time, int pgid) {
  return fmt::format("{}:{}:{}", pid, start_time, pgid);
}

bool parse_process_instance_id(const std::string& id, int* pid, uint64_t* start_time, int* pgid) {
  int p = 0, g = 0;
  uint64_t t = 0;
  int used = 0;
  if (std::sscanf(id.c_str(), "%d:%" SCNu64 ":%d%n", &p, &t, &g, &used) != 3 ||
      static_cast<size_t>(used) != id.size() || p <= 0 || g < 0)
    return false;
  *pid = p;
  *start_time = t;
  *pgid = g;
  return true;
}

nlohmann::json to_json(const instance_ref& r) {
  return {{"instance", r.id}, {"pid", r.pid}, {"port", r.port}};
}

instance_ref instance_from(const nlohmann::json& data) {
  instance_ref r;
  if (!data.is_object()) return r;
  r.port = data.value("port", 0);
  r.pid = data.value("pid", 0);
  if (auto it = data.find("instance"); it != data.end() && it->is_string()) {
    r.id = it->get<std::string>();
  } else if (r.pid > 0) {  // the record's old shape: the process driver's fields
    r.id = process_instance_id(r.pid, data.value("start_time", uint64_t{0}), data.value("pgid", 0));
  }
  return r;
}

}  // namespace berth
