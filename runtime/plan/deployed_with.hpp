// What a deploy records about the manifest it ran with, so that a later plan can say what a new
// deploy would change: the manifest without secret values (to_json(m, false)) and, per secret,
// an HMAC-SHA256 of its value under a random key of the project's own (<project>/.secret-digest-key,
// 0600, beside .secrets; never in the log). A changed value changes its digest; the digest
// says nothing about the value to whoever reads the log or an answer without that key.
// No actor code; the functions read (and create) one small file, safe from any thread.
#pragma once
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "messages/manifest.hpp"
#include "runtime/files/layout.hpp"
#include "runtime/status.hpp"

namespace berth {

struct deploy_inputs;

// The project's digest key (32 random bytes). `create`: made (0600, atomically: two callers
// agree on one key) when missing. not_found when missing and !create; invalid_argument when the
// file is not berth's own 0600 regular file of the right size; io_error otherwise.
status secret_digest_key(const project_paths& paths, bool create, std::string* key);

// Name -> 64 hex chars of HMAC-SHA256(key, name NUL value): equal values of two secrets give
// different digests. Empty when `key` is empty.
std::map<std::string, std::string> secret_digests(const std::string& key,
                                                  const std::map<std::string, std::string>& secrets);

// resources.deployed_with of a deploy or rollback: {"manifest": to_json(in.spec, false),
// "secrets": {NAME: digest}} with the values the job gives its release (in.env); "secrets"
// is left out when no key could be read or made (a plan then compares secrets by name only).
nlohmann::json deployed_with(const deploy_inputs& in);

// The recorded form read back.
struct recorded_manifest {
  bool known = false;                          // the deployment recorded one
  nlohmann::json manifest;                     // to_json(m, false) as recorded
  bool has_digests = false;
  std::map<std::string, std::string> digests;  // name -> digest
};
recorded_manifest read_deployed_with(const nlohmann::json& resources);

}  // namespace berth
