// Custom domains of a project (manifest `domains`): the rule a name must follow, and the rule
// that keeps berth's own names (<name>.<domain_suffix>) berth's. Pure functions.
#pragma once
#include <string>
#include <vector>

namespace berth {

constexpr size_t kMaxDomains = 20;  // per project

// Why `domain` is not a custom domain berth accepts ("" when it is): a lowercase DNS name,
// 2+ labels of 1-63 of [a-z0-9-] not starting or ending with '-', at most 253 characters, no
// wildcard, not an IP address.
std::string check_domain(const std::string& domain);

// Whether `domain` is `suffix` itself or a name under it (berth serves <name>.<suffix>).
bool domain_under(const std::string& domain, const std::string& suffix);

// The first of `domains` under `suffix`, as "domains[i]: ..." ("" when none is).
std::string domains_under_suffix(const std::vector<std::string>& domains, const std::string& suffix);

}  // namespace berth
