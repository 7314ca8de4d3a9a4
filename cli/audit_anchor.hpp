// The anchored part of `berth audit` (runtime/eventlog/audit_anchor.hpp): verify's checkpoint
// and head checks, and the `head` and `key` verbs. Used by cli/audit.cpp only.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "runtime/eventlog/event_log.hpp"

namespace CLI {
class App;
}

namespace berth {

struct anchor_options {
  std::string public_key_file;  // --public-key: a PEM public (or private) key
  std::string audit_key_file;   // --audit-key: the private key file (default path otherwise)
  std::string head;             // --head: a signed head as JSON text, or a file holding it
};

// Adds --public-key, --audit-key and --head to `verify`.
void add_anchor_options(CLI::App* verify, anchor_options& o);

// Checks the log's checkpoints (and the anchored head) with the trusted key: the one given, else
// the audit key file, else the head's own key. Prints what it found unless json_output; fills
// *out with {checkpoints, covered_seq, last_seq, key_id, head_checked, verified, reason}.
// Returns false when something no longer matches. Throws CLI::RuntimeError(2) on bad arguments.
bool verify_log_anchors(const event_log& log, const anchor_options& o, bool json_output, nlohmann::json* out);

// `berth audit head` and `berth audit key`.
void register_audit_anchor(CLI::App* audit);

}  // namespace berth
