#include "messages/domains.hpp"

#include <algorithm>

namespace berth {

std::string check_domain(const std::string& d) {
  if (d.empty()) return "must not be empty";
  if (d.size() > 253) return "is too long (at most 253 characters)";
  if (d.find('*') != std::string::npos) return "must not be a wildcard (name each domain)";
  if (std::any_of(d.begin(), d.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) return "must be lowercase";
  if (d.find(':') != std::string::npos || d.find('[') != std::string::npos)
    return "must be a DNS name (not an IP address, no port)";
  if (d.back() == '.') return "must not end with '.'";
  size_t labels = 0, start = 0;
  std::string last;
  while (start <= d.size()) {
    auto end = d.find('.', start);
    if (end == std::string::npos) end = d.size();
    auto label = d.substr(start, end - start);
    if (label.empty()) return "must not have an empty label ('..' or a leading '.')";
    if (label.size() > 63) return "has a label longer than 63 characters";
    for (char c : label)
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
        return "may contain only lowercase letters, digits, '-' and '.'";
    if (label.front() == '-' || label.back() == '-') return "has a label that starts or ends with '-'";
    ++labels;
    last = std::move(label);
    start = end + 1;
  }
  // A top-level label of digits only is no DNS name: 10.0.0.1 is an address.
  if (std::all_of(last.begin(), last.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return "must be a DNS name, not an IP address";
  if (labels < 2) return "needs at least two labels (shop.example.com)";
  return "";
}

bool domain_under(const std::string& domain, const std::string& suffix) {
  if (suffix.empty()) return false;
  if (domain == suffix) return true;
  return domain.size() > suffix.size() && domain.compare(domain.size() - suffix.size(), suffix.size(), suffix) == 0 &&
         domain[domain.size() - suffix.size() - 1] == '.';
}

std::string domains_under_suffix(const std::vector<std::string>& domains, const std::string& suffix) {
  for (size_t i = 0; i < domains.size(); ++i)
    if (domain_under(domains[i], suffix))
      return "domains[" + std::to_string(i) + "]: '" + domains[i] + "' is under this server's domain suffix '" +
             suffix + "' (those names are berth's: <project>." + suffix + ")";
  return "";
}

}  // namespace berth
