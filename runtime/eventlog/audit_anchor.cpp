#include "runtime/eventlog/audit_anchor.hpp"

#include <fmt/format.h>

namespace berth {

using json = nlohmann::json;

namespace {

// The event at `seq`; false when the log has none there.
bool event_at(const event_log& log, uint64_t seq, event_record* out) {
  bool found = false;
  if (seq == 0) return false;
  auto s = log.scan(seq, [&](const event_record& e) {
    found = e.seq == seq;
    if (found) *out = e;
    return false;
  });
  return s && found;
}

bool is_hex(const std::string& s, size_t n) {
  return s.size() == n && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

}  // namespace

std::string signed_head_message(uint64_t seq, const std::string& head_hash) {
  return fmt::format("berth log head v1\nseq={}\nhash={}\n", seq, head_hash);
}

status sign_head(const audit_key& key, uint64_t seq, const std::string& head_hash, signed_head* out) {
  signed_head h;
  h.seq = seq;
  h.head_hash = head_hash;
  h.public_key = key.public_hex();
  h.key_id = key.key_id();
  if (auto s = key.sign(signed_head_message(seq, head_hash), &h.signature); !s) return s;
  *out = std::move(h);
  return status::ok();
}

json to_json(const signed_head& h) {
  return {{"seq", h.seq},
          {"head_hash", h.head_hash},
          {"signature", h.signature},
          {"public_key", h.public_key},
          {"key_id", h.key_id}};
}

status signed_head_from(const std::string& json_text, signed_head* out) {
  auto j = json::parse(json_text, nullptr, false);
  if (!j.is_object()) return status::invalid_argument("a signed head is a JSON object");
  signed_head h;
  if (!j.contains("seq") || !j["seq"].is_number_unsigned() || j["seq"].get<uint64_t>() == 0)
    return status::invalid_argument("a signed head needs seq (a positive integer)");
  h.seq = j["seq"].get<uint64_t>();
  auto text = [&](const char* key, size_t n, std::string* field) {
    if (!j.contains(key) || !j[key].is_string() || !is_hex(j[key].get<std::string>(), n)) return false;
    *field = j[key].get<std::string>();
    return true;
  };
  if (!text("head_hash", 64, &h.head_hash)) return status::invalid_argument("a signed head needs head_hash (64 hex chars)");
  if (!text("signature", 128, &h.signature)) return status::invalid_argument("a signed head needs signature (128 hex chars)");
  if (!text("public_key", 64, &h.public_key)) return status::invalid_argument("a signed head needs public_key (64 hex chars)");
  h.key_id = j.value("key_id", "");
  *out = std::move(h);
  return status::ok();
}

// ---- checkpoints ------------------------------------------------------------------------------

log_checkpointer::log_checkpointer(audit_key key, uint64_t every) : key_(std::move(key)), every_(every ? every : 1) {}

status log_checkpointer::head_event(const event_log& log, new_event* out) {
  event_record head;
  auto seq = log.last_seq();
  if (!event_at(log, seq, &head)) return status::not_found("the log is empty");
  signed_head h;
  if (auto s = sign_head(key_, head.seq, head.hash, &h); !s) return s;
  signed_seq_ = head.seq;
  *out = new_event{audit_stream, log_checkpoint_type, dump_json(to_json(h))};
  return status::ok();
}

bool log_checkpointer::due(const event_log& log, new_event* out) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!loaded_) {
    event_record last;
    if (log.last_of_stream(audit_stream, &last))
      signed_seq_ = payload_object(last.data).value("seq", uint64_t{0});
    loaded_ = true;
  }
  if (log.last_seq() < signed_seq_ + every_) return false;
  return static_cast<bool>(head_event(log, out));
}

status log_checkpointer::final_checkpoint(event_log& log, bool* appended) {
  std::lock_guard<std::mutex> lock(mu_);
  if (appended) *appended = false;
  auto seq = log.last_seq();
  if (seq == 0) return status::ok();
  event_record last;
  if (event_at(log, seq, &last) && last.stream == audit_stream && last.type == log_checkpoint_type)
    return status::ok();  // nothing happened since the last checkpoint
  new_event e;
  if (auto s = head_event(log, &e); !s) return s;
  std::vector<event_record> stored;
  if (auto s = log.append({e}, true, &stored); !s) return s;
  if (appended) *appended = true;
  return status::ok();
}

// ---- verification -----------------------------------------------------------------------------

anchor_report verify_anchors(const event_log& log, const audit_key& trusted, const signed_head* anchored) {
  anchor_report r;
  r.last_seq = log.last_seq();
  const auto trusted_hex = trusted.public_hex();
  auto fail = [&](uint64_t at, std::string why) {
    if (!r.ok) return;
    r.ok = false;
    r.bad_checkpoint = at;
    r.reason = std::move(why);
  };
  std::vector<event_record> checkpoints;
  auto s = log.read_stream(audit_stream, 1, 0, &checkpoints);
  if (!s && s.which() != status::code::not_found) {
    fail(0, "cannot read the checkpoints: " + s.message());
    return r;
  }
  for (auto& c : checkpoints) {
    if (c.type != log_checkpoint_type) continue;
    ++r.checkpoints;
    signed_head h;
    if (auto p = signed_head_from(c.data, &h); !p) {
      fail(c.seq, fmt::format("checkpoint at seq {} is malformed: {}", c.seq, p.message()));
      break;
    }
    if (h.public_key != trusted_hex) {
      fail(c.seq, fmt::format("checkpoint at seq {} was signed by another key (key_id {}, trusted key_id {}): "
                              "someone re-signed the log, or the wrong public key was given",
                              c.seq, h.key_id.empty() ? "?" : h.key_id, trusted.key_id()));
      break;
    }
    if (!trusted.verify(signed_head_message(h.seq, h.head_hash), h.signature)) {
      fail(c.seq, fmt::format("checkpoint at seq {} has an invalid signature", c.seq));
      break;
    }
    event_record e;
    if (h.seq >= c.seq || !event_at(log, h.seq, &e)) {
      fail(c.seq, fmt::format("checkpoint at seq {} signs head seq {}, which is not an earlier event of this log",
                              c.seq, h.seq));
      break;
    }
    if (e.hash != h.head_hash) {
      fail(c.seq, fmt::format("checkpoint at seq {} no longer matches: it signed event {} with hash {}, the log "
                              "now has hash {} there: the log was rewritten at or before seq {}",
                              c.seq, h.seq, h.head_hash, e.hash, h.seq));
      break;
    }
    r.covered_seq = std::max(r.covered_seq, h.seq);
  }
  if (r.ok) {
    uint64_t later_checkpoints = 0;
    for (auto& c : checkpoints)
      if (c.seq > r.covered_seq) ++later_checkpoints;
    r.unsigned_events = r.last_seq - r.covered_seq - later_checkpoints;
  }
  if (anchored && r.ok) {
    const auto& h = *anchored;
    if (h.public_key != trusted_hex)
      fail(0, fmt::format("the anchored head was signed by another key (key_id {}, trusted key_id {})",
                          h.key_id.empty() ? "?" : h.key_id, trusted.key_id()));
    else if (!trusted.verify(signed_head_message(h.seq, h.head_hash), h.signature))
      fail(0, "the anchored head's signature is invalid");
    else if (r.last_seq < h.seq)
      fail(0, fmt::format("truncated: the log ends at seq {}, before the anchored head seq {}", r.last_seq, h.seq));
    else {
      event_record e;
      if (!event_at(log, h.seq, &e))
        fail(0, fmt::format("truncated: the log has no event at the anchored head seq {}", h.seq));
      else if (e.hash != h.head_hash)
        fail(0, fmt::format("rewritten: the anchored head signed event {} with hash {}, the log now has {}",
                            h.seq, h.head_hash, e.hash));
      else
        r.head_checked = true;
    }
  }
  return r;
}

}  // namespace berth
