// JSON of a workspace's live tree (render.hpp); a recorded source_view is render.cpp's.
#include <fmt/format.h>

#include "http/render.hpp"
#include "runtime/workspace/tree_hash.hpp"

namespace berth {

using json = nlohmann::json;

json to_json(const tree_listing& live, const source_view* recorded) {
  json entries = json::array();
  for (auto& e : live.entries) {
    const char* type = e.type == 'd' ? "dir" : e.type == 'l' ? "link" : "file";
    json j{{"path", e.path}, {"type", type}, {"size", e.size}, {"mode", fmt::format("{:04o}", e.mode & 0777)}};
    if (e.type == 'f') j["sha256"] = e.sha256;
    if (e.type == 'l') j["target"] = e.target;
    entries.push_back(std::move(j));
  }
  return {{"hash", live.hash},
          {"files", live.files},
          {"bytes", live.bytes},
          {"entries", std::move(entries)},
          {"recorded", recorded != nullptr && !recorded->hash.empty() ? to_json(*recorded) : json(nullptr)}};
}

}  // namespace berth
