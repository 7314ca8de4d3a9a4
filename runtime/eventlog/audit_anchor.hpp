// Anchoring the hash-chained event log with signatures. No actor code.
//
// The chain alone proves nothing against someone who can write the log: they can rewrite any
// event and recompute every hash after it (the chain starts from a zero genesis, no secret).
// So the head (seq, hash) is signed with the audit key (runtime/eventlog/audit_key.hpp):
// - a checkpoint event, stream "audit", type "log_checkpoint",
//   data {seq, head_hash, signature, public_key, key_id}, is appended whenever the log has
//   grown by `every` events since the head the last checkpoint signed, and at shutdown when
//   anything was appended after the last checkpoint (never while idle);
// - `berth audit head` prints a signed head (the same fields) to be kept elsewhere.
// The signature covers signed_head_message(seq, head_hash). verify_anchors() checks every
// checkpoint against the trusted public key and the event it names, and an externally kept
// head against the log's length and that event.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "messages/event.hpp"
#include "runtime/eventlog/audit_key.hpp"
#include "runtime/eventlog/event_log.hpp"

namespace berth {

constexpr const char* audit_stream = "audit";
constexpr const char* log_checkpoint_type = "log_checkpoint";

struct signed_head {
  uint64_t seq = 0;        // the event the signature covers (the head when signed)
  std::string head_hash;   // its hash
  std::string signature;   // Ed25519, 128 hex chars
  std::string public_key;  // raw, 64 hex chars
  std::string key_id;      // first 16 hex chars of SHA-256(public key)
};

// The exact bytes signed: "berth log head v1\nseq=<seq>\nhash=<hash>\n".
std::string signed_head_message(uint64_t seq, const std::string& head_hash);
// Signs (seq, head_hash) with `key`. invalid_argument without a private key.
status sign_head(const audit_key& key, uint64_t seq, const std::string& head_hash, signed_head* out);
nlohmann::json to_json(const signed_head& h);
// Parses the fields above from JSON text; invalid_argument with what is missing.
status signed_head_from(const std::string& json_text, signed_head* out);

// Decides when the log needs a checkpoint and makes it. Thread-safe; the event_store actor
// calls due() after each commit, serve calls final_checkpoint() once every actor has stopped.
class log_checkpointer {
 public:
  log_checkpointer(audit_key key, uint64_t every);
  // A checkpoint event for the head of `log` when it has grown by `every` events since the
  // head the last checkpoint signed (read from the log the first time); else false. The next
  // one counts from this head, so a checkpoint still being written is not asked for twice.
  bool due(const event_log& log, new_event* out);
  // At shutdown: appends (synced) a checkpoint of the head unless the log's last event is a
  // checkpoint already (idle since) or the log is empty. *appended says whether it did.
  status final_checkpoint(event_log& log, bool* appended = nullptr);
  const audit_key& key() const { return key_; }

 private:
  status head_event(const event_log& log, new_event* out);  // mu_ held

  audit_key key_;
  uint64_t every_;
  std::mutex mu_;
  bool loaded_ = false;
  uint64_t signed_seq_ = 0;  // head seq the last checkpoint signed
};

// What verify_anchors found.
struct anchor_report {
  bool ok = true;
  uint64_t checkpoints = 0;       // checkpoint events checked
  uint64_t covered_seq = 0;       // the highest head seq a valid checkpoint signed
  uint64_t last_seq = 0;          // the log's last event
  uint64_t unsigned_events = 0;   // events after covered_seq (checkpoints themselves not counted)
  bool head_checked = false;      // an anchored head was given and matched
  uint64_t bad_checkpoint = 0;    // seq of the checkpoint event that no longer matches (0: none)
  std::string reason;             // what is wrong, or "" when ok
};

// Checks every checkpoint of `log`: signed by `trusted` (a checkpoint carrying another public
// key fails), a valid signature, and the event at its seq still has the signed hash. With
// `anchored` (a head kept elsewhere, from `berth audit head`), also checks that its signature is
// the trusted key's, that the log reaches its seq (else: truncated) and that the event there
// has its hash (else: rewritten). The hash chain itself is event_log::verify()'s job.
anchor_report verify_anchors(const event_log& log, const audit_key& trusted, const signed_head* anchored);

}  // namespace berth
