// A project manifest read from a file for `berth projects create -f`: JSON as is, or TOML
// (by the .toml extension) turned into the same JSON with toml++. The server validates it.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace berth::cli {

// The manifest in `path`; throws a failure (exit_usage) naming the file and what is wrong.
nlohmann::json read_manifest_file(const std::string& path);

}  // namespace berth::cli
