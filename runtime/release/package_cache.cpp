// The per-project packaging cache (see package_cache.hpp), as MessagePack through nlohmann.
#include "runtime/release/package_cache.hpp"

#include <cstring>

#include <nlohmann/json.hpp>
#include "runtime/files/fs_util.hpp"

namespace berth::release_detail {

namespace {
constexpr int kVersion = 1;
using json = nlohmann::json;
}  // namespace

package_cache load_package_cache(const std::filesystem::path& file) {
  package_cache c;
  auto bytes = fsutil::read_file(file.string());
  if (bytes.empty()) return c;
  try {
    auto j = json::from_msgpack(bytes);
    if (j.at("v").get<int>() != kVersion) return {};
    c.hash = j.at("hash").get<std::string>();
    c.release = j.at("release").get<std::string>();
    auto& entries = j.at("entries");
    c.entries.reserve(entries.size());
    for (auto& e : entries) {
      cached_entry x;
      x.rel = e.at(0).get<std::string>();
      x.kind = e.at(1).get<int>();
      x.mode = e.at(2).get<uint32_t>();
      x.size = e.at(3).get<uint64_t>();
      x.target = e.at(4).get<std::string>();
      x.dev = e.at(5).get<uint64_t>();
      x.ino = e.at(6).get<uint64_t>();
      x.mtime_ns = e.at(7).get<int64_t>();
      x.ctime_ns = e.at(8).get<int64_t>();
      c.entries.push_back(std::move(x));
    }
    for (auto& cp : j.at("checkpoints")) {
      auto& bin = cp.at(1).get_binary();
      SHA256_CTX ctx;
      if (bin.size() != sizeof ctx) return {};
      std::memcpy(&ctx, bin.data(), sizeof ctx);
      c.checkpoints[cp.at(0).get<int64_t>()] = ctx;
    }
  } catch (const json::exception&) {
    return {};
  }
  return c;
}

bool save_package_cache(const std::filesystem::path& file, const package_cache& c) {
  json entries = json::array();
  for (auto& e : c.entries)
    entries.push_back(json::array({e.rel, e.kind, e.mode, e.size, e.target, e.dev, e.ino, e.mtime_ns, e.ctime_ns}));
  json checkpoints = json::array();
  for (auto& [i, ctx] : c.checkpoints) {
    const auto* p = reinterpret_cast<const uint8_t*>(&ctx);
    checkpoints.push_back(json::array({i, json::binary(std::vector<uint8_t>(p, p + sizeof ctx))}));
  }
  json j = {{"v", kVersion}, {"hash", c.hash}, {"release", c.release}, {"entries", std::move(entries)},
            {"checkpoints", std::move(checkpoints)}};
  auto bytes = json::to_msgpack(j);
  return static_cast<bool>(fsutil::write_atomically(file.string(), std::string(bytes.begin(), bytes.end())));
}

}  // namespace berth::release_detail
