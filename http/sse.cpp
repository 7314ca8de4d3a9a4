#include "http/sse.hpp"

#include <algorithm>

#include "messages/deployment.hpp"

namespace berth::http {

namespace {

using json = nlohmann::json;

json field(const json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? json(nullptr) : *it;
}

}  // namespace

std::string sse_event(const std::string& name, const json& data) {
  return "event: " + name + "\ndata: " + dump_json(data) + "\n\n";
}

std::string sse_comment(const std::string& text) {
  std::string t = text;
  std::replace(t.begin(), t.end(), '\n', ' ');
  std::replace(t.begin(), t.end(), '\r', ' ');
  return ": " + t + "\n\n";
}

bool is_terminal_status(const std::string& status) {
  return status == "completed" || status == "unchanged" || status == "failed" || status == "cancelled";
}

json progress_data(const json& detail) {
  json p{{"phase", field(detail, "phase")},
         {"status", field(detail, "status")},
         {"progress", field(detail, "progress")},
         {"message", field(detail, "message")},
         {"resources", field(detail, "resources")}};
  if (auto canary = field(detail, "canary"); canary.is_object()) p["canary"] = canary;  // live figures
  return p;
}

std::vector<json> passed_phases(const json& detail, size_t& seen, const json& resources) {
  auto spans = field(detail, "phases");
  if (!spans.is_array()) return {};
  if (seen > spans.size()) seen = spans.size();  // not expected: the list only grows
  auto current = field(detail, "phase");
  std::vector<json> out;
  for (size_t i = seen; i < spans.size(); ++i) {
    auto name = field(spans[i], "phase");
    if (i + 1 == spans.size() && name == current) break;
    phase p;
    bool known = name.is_string() && parse_phase(name.get<std::string>(), p);
    out.push_back({{"phase", name},
                   {"status", known && p == phase::queued ? "queued" : "running"},
                   {"progress", known ? json(progress_of(p)) : json(nullptr)},
                   {"message", name},
                   {"resources", resources}});
  }
  seen = spans.size();
  return out;
}

json end_data(const json& detail, std::string& name) {
  auto status = field(detail, "status");
  auto status_text = status.is_string() ? status.get<std::string>() : std::string();
  if (status_text == "completed" || status_text == "unchanged") {
    name = "complete";
    return {{"url", field(detail, "url")},
            {"hash", field(field(detail, "resources"), "hash")},
            {"duration_s", field(detail, "duration_s")},
            {"status", status}};
  }
  name = "error";
  auto err = field(detail, "error");
  if (err.is_object())
    return {{"phase", field(err, "phase")}, {"message", field(err, "message")}, {"code", field(err, "code")}};
  // No error recorded (e.g. cancelled while queued): say what the deployment says.
  return {{"phase", field(detail, "phase")},
          {"message", field(detail, "message")},
          {"code", status_text.empty() ? json("failed") : json(status_text)}};
}

}  // namespace berth::http
