// spdlog set up as human text or JSON lines. In JSON mode every message goes through
// log_kv so the line stays valid JSON.
#pragma once
#include <string>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace berth {

void setup_logging(const std::string& format, const std::string& level);
// Logs `msg` with structured fields: {"msg":..., fields...} in JSON mode, "msg k=v" otherwise.
void log_kv(spdlog::level::level_enum lvl, const std::string& msg, const nlohmann::json& fields = {});
// The fields of a line about a project, the same keys in both formats: `project`, plus
// `deployment` and `phase` when the line is about one deployment ("" leaves the key out).
nlohmann::json project_fields(const std::string& project, const std::string& deployment = "",
                              const std::string& phase = "");
// A line about a project's environment (production | preview) outside a deployment:
// project_fields plus `env` and `more`.
nlohmann::json env_fields(const std::string& project, const std::string& env,
                          const nlohmann::json& more = nlohmann::json::object());

}  // namespace berth
