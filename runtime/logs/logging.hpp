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

}  // namespace berth
