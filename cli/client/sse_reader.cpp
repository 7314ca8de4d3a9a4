#include "cli/client/sse_reader.hpp"

namespace berth::cli {

// One line of the event stream format (HTML Living Standard, "Interpreting an event stream").
void sse_reader::field(const std::string& line) {
  if (line.empty() || line[0] == ':') return;
  auto colon = line.find(':');
  std::string name = line.substr(0, colon), value;
  if (colon != std::string::npos) {
    value = line.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.erase(0, 1);
  }
  if (name == "event") {
    current_.event = value;
  } else if (name == "data") {
    if (has_data_) current_.data += '\n';
    current_.data += value;
    has_data_ = true;
  } else if (name == "id") {
    current_.id = value;
  }
}

std::vector<sse_message> sse_reader::feed(std::string_view chunk) {
  std::vector<sse_message> out;
  for (auto& line : lines_.feed(chunk)) {
    if (!line.empty()) {
      field(line);
      continue;
    }
    if (has_data_) out.push_back(std::move(current_));
    current_ = sse_message{};
    has_data_ = false;
  }
  return out;
}

}  // namespace berth::cli
