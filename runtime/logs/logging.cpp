#include "runtime/logs/logging.hpp"

#include "messages/event.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>

namespace berth {

namespace {

// Fields of the log_kv call in progress on this thread (spdlog formats synchronously).
thread_local const nlohmann::json* current_fields = nullptr;

// %* : the message as a JSON string, followed by the log_kv fields, so that every line is
// valid JSON whether it came from log_kv or from a plain spdlog call.
class json_message_flag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    nlohmann::json text = std::string(msg.payload.data(), msg.payload.size());
    std::string out = "\"msg\":" + dump_json(text);
    if (current_fields != nullptr && current_fields->is_object())
      for (auto& [k, v] : current_fields->items())
        out += "," + dump_json(k) + ":" + dump_json(v);
    dest.append(out.data(), out.data() + out.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<json_message_flag>();
  }
};

bool json_mode = false;

}  // namespace

void setup_logging(const std::string& format, const std::string& level) {
  json_mode = format == "json";
  auto logger = spdlog::get("berth");
  if (!logger) logger = spdlog::stderr_color_mt("berth");
  if (json_mode) {
    auto f = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    f->add_flag<json_message_flag>('*').set_pattern(
        R"({"ts":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","logger":"%n","thread":%t,%*})");
    logger->set_formatter(std::move(f));
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  }
  logger->set_level(spdlog::level::from_str(level));
  spdlog::set_default_logger(logger);
  spdlog::flush_on(spdlog::level::info);
}

void log_kv(spdlog::level::level_enum lvl, const std::string& msg, const nlohmann::json& fields) {
  if (json_mode) {
    current_fields = &fields;
    spdlog::log(lvl, "{}", msg);
    current_fields = nullptr;
    return;
  }
  std::string line = msg;
  if (fields.is_object())
    for (auto& [k, v] : fields.items())
      line += " " + k + "=" + (v.is_string() ? v.get<std::string>() : dump_json(v));
  spdlog::log(lvl, "{}", line);
}

nlohmann::json project_fields(const std::string& project, const std::string& deployment,
                              const std::string& phase) {
  nlohmann::json fields{{"project", project}};
  if (!deployment.empty()) fields["deployment"] = deployment;
  if (!phase.empty()) fields["phase"] = phase;
  return fields;
}

nlohmann::json env_fields(const std::string& project, const std::string& env, const nlohmann::json& more) {
  auto fields = project_fields(project);
  fields["env"] = env;
  if (more.is_object()) fields.update(more);
  return fields;
}

}  // namespace berth
