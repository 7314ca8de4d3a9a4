#include "messages/replay.hpp"

namespace berth {

bool log_replay::fold(const event_record& e) {
  if (e.ts_us > until_us) return false;
  const std::string prefix = project_stream_prefix;
  if (e.stream.compare(0, prefix.size(), prefix) == 0)
    berth::fold(projects[e.stream.substr(prefix.size())], e);
  else if (e.stream == ports_stream)
    berth::fold(ports, e);
  return true;
}

std::vector<event_record> merge_by_seq(const std::vector<event_record>& a, const std::vector<event_record>& b) {
  std::vector<event_record> out;
  out.reserve(a.size() + b.size());
  size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    if (j == b.size() || (i < a.size() && a[i].seq < b[j].seq))
      out.push_back(a[i++]);
    else
      out.push_back(b[j++]);
  }
  return out;
}

project_at project_state_at(const std::string& name, const std::vector<event_record>& stream, int64_t at_us) {
  log_replay replay;
  replay.until_us = at_us;
  project_at out;
  size_t i = 0;
  while (i < stream.size() && replay.fold(stream[i])) ++i;
  out.state = replay.projects[name];
  if (!out.state.exists) return out;
  // The log's times never go backwards: the rest happened after at_us.
  for (; i < stream.size(); ++i)
    if (stream[i].type == ev::project_deleted) {
      out.deleted_us = stream[i].ts_us;
      break;
    }
  return out;
}

}  // namespace berth
