// Server-Sent Events framing and following a log file, for the streaming routes. No HTTP
// or actor code here, so it can be unit tested.
#pragma once
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/logs/log_follower.hpp"

namespace berth::http {

// "event: <name>\ndata: <data as one-line JSON>\n\n". Invalid UTF-8 in strings is replaced
// (U+FFFD), never thrown on; JSON escapes newlines, so data is always one line.
std::string sse_event(const std::string& name, const nlohmann::json& data);
// ": <text>\n\n" (a comment line; EventSource clients ignore it). '\n' in text become ' '.
std::string sse_comment(const std::string& text);

// Line splitting and log following live in runtime/logs/log_follower.hpp (the deploy pipeline
// follows build output with them); the names stay reachable here.
using berth::line_splitter;
using berth::log_follower;

// Deployment streams. `detail` is the deployment detail JSON the projects actor answers.
// A status after which nothing changes any more: completed, unchanged, failed, cancelled.
bool is_terminal_status(const std::string& status);
// The data of a `progress` event: {phase, status, progress, message, resources}.
nlohmann::json progress_data(const nlohmann::json& detail);
// Progress data for the phases a deployment passed through between two polls: the entries of
// detail["phases"] from index `seen` on, except the last when it is the phase the deployment
// is in now (the caller reports that one from the detail). Such phases may last only a few
// ms; their data is {phase, status "running" ("queued" for queued), the phase's nominal
// progress, message = the phase name, resources = `resources`}. Sets `seen` to the count.
std::vector<nlohmann::json> passed_phases(const nlohmann::json& detail, size_t& seen,
                                          const nlohmann::json& resources);
// The last event of a stream once `detail` is terminal: `complete` {url, hash, duration_s,
// status} for completed/unchanged, else `error` {phase, message, code}. Sets `name`.
nlohmann::json end_data(const nlohmann::json& detail, std::string& name);

}  // namespace berth::http
