#include "messages/event.hpp"

#include <ctime>

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
  time_t secs = static_cast<time_t>(ts_us / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts_us % 1000000);
}

bool parse_iso8601(const std::string& text, int64_t& ts_us) {
  std::tm tm{};
  const char* rest = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (rest == nullptr) return false;
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
    int hh = 0, mm = 0;
    if (sscanf(rest + 1, "%2d:%2d", &hh, &mm) != 2) return false;
    offset_s = (hh * 3600 + mm * 60) * (*rest == '+' ? 1 : -1);
    rest += 6;
  }
  if (*rest != '\0') return false;
  ts_us = (static_cast<int64_t>(timegm(&tm)) - offset_s) * 1000000 + micros;
  return true;
}

bool valid_stream_name(const std::string& s) {
  if (s.empty() || s.size() > 200) return false;
  for (char c : s)
    if (c == '|' || c == '\n' || c == '\0') return false;
  return true;
}

}  // namespace berth
