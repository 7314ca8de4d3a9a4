#include "runtime/logs/mask.hpp"

#include <algorithm>

namespace berth {

secret_mask::secret_mask(const std::map<std::string, std::string>& secrets) {
  auto add = [this](std::string_view v) {
    if (!v.empty() && v.back() == '\r') v.remove_suffix(1);
    if (v.size() >= min_length) values_.emplace_back(v);
  };
  for (auto& [name, value] : secrets) {
    add(value);
    if (value.find('\n') == std::string::npos) continue;
    for (size_t start = 0; start <= value.size();) {
      auto nl = value.find('\n', start);
      if (nl == std::string::npos) nl = value.size();
      add(std::string_view(value).substr(start, nl - start));
      start = nl + 1;
    }
  }
  std::sort(values_.begin(), values_.end(),
            [](const std::string& a, const std::string& b) { return a.size() != b.size() ? a.size() > b.size() : a < b; });
  values_.erase(std::unique(values_.begin(), values_.end()), values_.end());
}

std::string mask_secrets(std::string_view text, const secret_mask& mask) {
  if (mask.empty() || text.empty()) return std::string(text);
  // Which bytes belong to some occurrence, then one replacement per run of them: overlapping
  // occurrences are covered whole, whatever order the values are tried in.
  std::vector<bool> hidden;
  for (auto& value : mask.values()) {
    for (size_t pos = text.find(value); pos != std::string_view::npos; pos = text.find(value, pos + 1)) {
      if (hidden.empty()) hidden.assign(text.size(), false);
      std::fill(hidden.begin() + pos, hidden.begin() + pos + value.size(), true);
    }
  }
  if (hidden.empty()) return std::string(text);
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (!hidden[i]) {
      out += text[i++];
      continue;
    }
    out += secret_mask::replacement;
    while (i < text.size() && hidden[i]) ++i;
  }
  return out;
}

std::vector<std::string> mask_secrets(std::vector<std::string> lines, const secret_mask& mask) {
  if (mask.empty()) return lines;
  for (auto& line : lines) line = mask_secrets(line, mask);
  return lines;
}

std::optional<std::string> masked_lines::flush() {
  auto rest = split_.flush();
  if (rest) *rest = mask_secrets(*rest, mask_);
  return rest;
}

}  // namespace berth
