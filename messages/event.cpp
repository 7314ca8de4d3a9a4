#include "messages/event.hpp"

#include <ctime>
#include <initializer_list>
#include <utility>

#include <fmt/format.h>

namespace berth {

nlohmann::json to_json(const event_record& e) {
  auto data = nlohmann::json::parse(e.data, nullptr, false);
  return {{"seq", e.seq},         {"stream", e.stream},
          {"type", e.type},       {"ts_us", e.ts_us},
          {"time", iso8601(e.ts_us)},
          {"data", data.is_discarded() ? nlohmann::json(e.data) : data},
          {"prev_hash", e.prev_hash}, {"hash", e.hash}};
}

std::string iso8601(int64_t ts_us) {
  // Floor division: before 1970 the fraction must count up from the second before.
  int64_t micros = ts_us % 1000000;
  time_t secs = static_cast<time_t>(ts_us / 1000000 - (micros < 0 ? 1 : 0));
  if (micros < 0) micros += 1000000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, micros);
}

bool parse_iso8601(const std::string& text, int64_t& ts_us) {
  // strptime alone takes "2026-1-2T3:4:5", leading blanks and 31 February (timegm then rolls
  // it into March): the fixed-width shape is checked first, the calendar day after.
  static constexpr char shape[] = "dddd-dd-ddTdd:dd:dd";
  if (text.size() < sizeof(shape) - 1) return false;
  if (text.find('\0') != std::string::npos) return false;  // strptime would stop at it
  for (size_t i = 0; i + 1 < sizeof(shape); ++i)
    if (shape[i] == 'd' ? !(text[i] >= '0' && text[i] <= '9') : text[i] != shape[i]) return false;
  std::tm tm{};
  const char* rest = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (rest == nullptr) return false;
  std::tm fields = tm;
  time_t probe = timegm(&tm);
  std::tm back{};
  gmtime_r(&probe, &back);
  if (back.tm_mday != fields.tm_mday || back.tm_mon != fields.tm_mon || back.tm_hour != fields.tm_hour ||
      back.tm_min != fields.tm_min)
    return false;
  int64_t micros = 0;
  if (*rest == '.') {
    ++rest;
    int digits = 0;
    while (*rest >= '0' && *rest <= '9') {
      if (digits < 6) micros = micros * 10 + (*rest - '0'), ++digits;
      ++rest;
    }
    if (digits == 0) return false;
    while (digits++ < 6) micros *= 10;
  }
  int64_t offset_s = 0;
  if (*rest == 'Z') {
    ++rest;
  } else if (*rest == '+' || *rest == '-') {
    // Exactly "hh:mm" (sscanf's %2d also took "+0:0", and the 6 bytes skipped then ran past
    // the end of the text).
    auto digit = [](char c) { return c >= '0' && c <= '9'; };
    if (!digit(rest[1]) || !digit(rest[2]) || rest[3] != ':' || !digit(rest[4]) || !digit(rest[5]))
      return false;
    int hh = (rest[1] - '0') * 10 + (rest[2] - '0');
    int mm = (rest[4] - '0') * 10 + (rest[5] - '0');
    if (hh > 23 || mm > 59) return false;
    offset_s = (hh * 3600 + mm * 60) * (*rest == '+' ? 1 : -1);
    rest += 6;
  }
  if (*rest != '\0') return false;
  ts_us = (static_cast<int64_t>(timegm(&tm)) - offset_s) * 1000000 + micros;
  return true;
}

namespace {

enum class json_kind { string, boolean, integer, object };

bool is_kind(const nlohmann::json& v, json_kind k) {
  switch (k) {
    case json_kind::string: return v.is_string();
    case json_kind::boolean: return v.is_boolean();
    case json_kind::integer: return v.is_number_integer();  // a float may not fit an int
    case json_kind::object: return v.is_object();
  }
  return false;
}

void drop_mistyped(nlohmann::json& j,
                   std::initializer_list<std::pair<const char*, json_kind>> fields) {
  for (auto& [key, kind] : fields) {
    auto it = j.find(key);
    if (it != j.end() && !is_kind(*it, kind)) j.erase(it);
  }
}

}  // namespace

// The payload fields the folds read (project_state.cpp, deployment.cpp, preview.cpp, proxy.cpp),
// by the type they read them as. berth never writes another type, but a damaged or foreign log
// may, and json::value() would then throw type_error out of the fold (or convert an
// out-of-range float to an int: undefined behaviour). Such members are dropped: the fold sees
// them missing.
nlohmann::json payload_object(const std::string& data) {
  using k = json_kind;
  auto j = nlohmann::json::parse(data, nullptr, false);
  if (!j.is_object()) return nlohmann::json::object();
  drop_mistyped(j, {{"id", k::string}, {"message", k::string}, {"kind", k::string},
                    {"target", k::string}, {"hash", k::string}, {"deployment", k::string},
                    {"reason", k::string}, {"project", k::string}, {"force", k::boolean},
                    {"progress", k::integer}, {"pid", k::integer}, {"start_time", k::integer},
                    {"pgid", k::integer}, {"port", k::integer}, {"host", k::string}, {"instance", k::string}, {"cause", k::string},
                    {"listen_port", k::integer}, {"upstream_port", k::integer},
                    {"admin_port", k::integer}, {"http_port", k::integer},
                    {"error", k::object}, {"ports", k::object}});
  if (auto e = j.find("error"); e != j.end())
    drop_mistyped(*e, {{"phase", k::string}, {"message", k::string}, {"code", k::string}});
  if (auto p = j.find("ports"); p != j.end())
    drop_mistyped(*p, {{"production", k::integer}, {"preview", k::integer}});
  return j;
}

std::string dump_json(const nlohmann::json& j, int indent) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool valid_stream_name(const std::string& s) {
  if (s.empty() || s.size() > 200) return false;
  for (char c : s)
    if (c == '|' || c == '\n' || c == '\0') return false;
  return true;
}

}  // namespace berth
