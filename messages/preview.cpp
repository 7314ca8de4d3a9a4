#include "messages/preview.hpp"

namespace berth {

std::string describe(const process_exited& x) {
  if (x.term_signal != 0) return "killed by signal " + std::to_string(x.term_signal);
  if (x.exit_code >= 0) return "exited with code " + std::to_string(x.exit_code);
  return "exited";
}

nlohmann::json to_json(const preview_launched& x) {
  return {{"pid", x.pid}, {"start_time", x.start_time}, {"pgid", x.pgid}, {"port", x.port}};
}

preview_launched preview_launched_from(const nlohmann::json& j) {
  preview_launched x;
  x.pid = j.value("pid", 0);
  x.start_time = j.value("start_time", uint64_t{0});
  x.pgid = j.value("pgid", 0);
  x.port = j.value("port", 0);
  return x;
}

}  // namespace berth
