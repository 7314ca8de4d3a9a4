#include "messages/preview.hpp"

namespace berth {

namespace {
constexpr size_t kept_exits = 64;  // more than any crash-loop limit berth accepts within a window
}  // namespace

void note_exit(std::vector<int64_t>& exits, int64_t ts_us) {
  exits.push_back(ts_us);
  if (exits.size() > kept_exits) exits.erase(exits.begin(), exits.end() - kept_exits);
}

bool fresh_budget(const nlohmann::json& data) {
  auto c = data.value("cause", std::string(cause::start));  // older records: a start
  return c == cause::start;
}

void fold(preview_record& s, const event_record& e) {
  if (e.type != ev::preview_started && e.type != ev::preview_stopped && e.type != ev::preview_exited &&
      e.type != ev::preview_crashed)
    return;
  auto data = payload_object(e.data);
  if (e.type == ev::preview_started) {
    s.status = "running";
    s.process = instance_from(data);
    s.reason.clear();
    if (fresh_budget(data)) s.exits_us.clear();
  } else if (e.type == ev::preview_stopped) {
    s.status = "stopped";
    s.process = {};
    s.reason.clear();
    s.exits_us.clear();
  } else {  // exited / crashed
    s.status = e.type == ev::preview_exited ? "exited" : "crashed";
    s.process = {};
    s.reason = data.value("reason", "");
    if (e.type == ev::preview_exited) note_exit(s.exits_us, e.ts_us);
  }
  s.last_seq = e.seq;
  ++s.events;
}

}  // namespace berth
