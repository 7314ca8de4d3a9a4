#include "cli/client/manifest_file.hpp"

#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "cli/client/exit_codes.hpp"

namespace berth::cli {

namespace {

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

nlohmann::json read_manifest_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw failure(exit_usage, fmt::format("cannot read the manifest file {}", path));
  std::stringstream text;
  text << in.rdbuf();
  if (ends_with(path, ".toml")) {
    toml::table table;
    try {
      table = toml::parse(text.str(), path);
    } catch (const toml::parse_error& e) {
      auto at = e.source().begin;
      throw failure(exit_usage, fmt::format("{}:{}:{}: {}", path, at.line, at.column, e.description()));
    }
    std::stringstream out;
    out << toml::json_formatter{table};
    return nlohmann::json::parse(out.str());
  }
  auto j = nlohmann::json::parse(text.str(), nullptr, false);
  if (j.is_discarded()) throw failure(exit_usage, fmt::format("{} is not valid JSON", path));
  if (!j.is_object()) throw failure(exit_usage, fmt::format("{}: a manifest is a JSON object", path));
  return j;
}

}  // namespace berth::cli
