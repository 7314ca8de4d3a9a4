// `berth audit verify` (its anchored part), `berth audit head`, `berth audit key`.
//   berth audit head --data DIR [--audit-key FILE]   the log's head, signed: keep it elsewhere
//   berth audit key [--audit-key FILE] [--json]      the public key (PEM) for --public-key
#include "cli/audit_anchor.hpp"

#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "runtime/eventlog/audit_anchor.hpp"
#include "runtime/eventlog/audit_key.hpp"

namespace berth {

namespace {

using json = nlohmann::json;

constexpr int exit_usage = 2;

[[noreturn]] void usage_error(const std::string& message) {
  std::cerr << "berth audit: " << message << "\n";
  throw CLI::RuntimeError(exit_usage);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  if (!in) usage_error("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The private key: --audit-key, else the default path. `required`: a missing file is an error;
// otherwise *found tells.
audit_key private_key(const std::string& given, bool required, bool* found) {
  auto path = given.empty() ? default_audit_key_path() : given;
  audit_key k;
  auto s = audit_key::load_private(path, &k);
  *found = static_cast<bool>(s);
  if (s) return k;
  if (s.which() == status::code::not_found && !required && given.empty()) return k;
  usage_error(s.message());
}

// --head: JSON text, or the name of a file holding it.
signed_head anchored_head(const std::string& given) {
  auto text = given;
  auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos || text[first] != '{') text = read_text(given);
  signed_head h;
  if (auto s = signed_head_from(text, &h); !s) usage_error("--head: " + s.message());
  return h;
}

std::unique_ptr<event_log> open_log(const std::string& data_dir) {
  std::unique_ptr<event_log> log;
  auto dir = data_dir + "/events";
  if (auto s = event_log::open(dir, event_log::mode::read_only, &log); !s)
    usage_error(fmt::format("cannot open the event log at {}: {}", dir, s.message()));
  return log;
}

}  // namespace

void add_anchor_options(CLI::App* verify, anchor_options& o) {
  verify->add_option("--public-key", o.public_key_file,
                     "the audit key's public half (PEM, from `berth audit key`) that checkpoints must carry");
  verify->add_option("--audit-key", o.audit_key_file,
                     "the audit key file (default: the one berth serve uses by default) when no --public-key")
      ->envname("BERTH_AUDIT_KEY");
  verify->add_option("--head", o.head,
                     "a signed head kept elsewhere (JSON from `berth audit head`, or a file): detects truncation");
}

bool verify_log_anchors(const event_log& log, const anchor_options& o, bool json_output, json* out) {
  audit_key trusted;
  std::string source;
  std::unique_ptr<signed_head> head;
  if (!o.head.empty()) head = std::make_unique<signed_head>(anchored_head(o.head));
  if (!o.public_key_file.empty()) {
    if (auto s = audit_key::parse_public(read_text(o.public_key_file), &trusted); !s)
      usage_error("--public-key " + o.public_key_file + ": " + s.message());
    source = "--public-key";
  } else {
    bool found = false;
    trusted = private_key(o.audit_key_file, !o.audit_key_file.empty(), &found);
    if (found) source = "the audit key file";
  }
  if (!trusted.valid() && head) {
    // The head was kept elsewhere: its key is as trusted as the head itself.
    if (auto s = audit_key::from_public_hex(head->public_key, &trusted); !s) usage_error("--head: " + s.message());
    source = "the anchored head";
  }
  if (!trusted.valid()) {
    *out = {{"verified", false}, {"reason", "no public key: checkpoints not checked"}};
    if (!json_output)
      std::cout << "not anchored: no public key given and no audit key file found; only the hash chain was "
                   "checked, which anyone who can write the log can recompute (give --public-key)\n";
    return true;
  }
  auto r = verify_anchors(log, trusted, head.get());
  *out = {{"verified", true},
          {"key_id", trusted.key_id()},
          {"checkpoints", r.checkpoints},
          {"covered_seq", r.covered_seq},
          {"last_seq", r.last_seq},
          {"unsigned_events", r.unsigned_events},
          {"head_checked", r.head_checked},
          {"bad_checkpoint", r.bad_checkpoint},
          {"reason", r.reason}};
  if (json_output) return r.ok;
  if (!r.ok) {
    std::cout << fmt::format("broken: {}\n", r.reason);
    return false;
  }
  std::cout << fmt::format("anchored: {} checkpoints signed by key {} ({}) verified; signed heads cover seq {} of {}",
                           r.checkpoints, trusted.key_id(), source, r.covered_seq, r.last_seq);
  if (r.unsigned_events > 0)
    std::cout << fmt::format(" ({} event{} after it protected by the hash chain only)", r.unsigned_events,
                             r.unsigned_events == 1 ? "" : "s");
  std::cout << "\n";
  if (r.head_checked) std::cout << fmt::format("anchored head seq {} matches\n", head->seq);
  else std::cout << "no anchored head given (--head): a truncated log is not detected\n";
  return true;
}

void register_audit_anchor(CLI::App* audit) {
  struct head_options {
    std::string data_dir, audit_key_file;
  };
  auto ho = std::make_shared<head_options>();
  auto* head = audit->add_subcommand(
      "head", "print the log's head signed with the audit key (JSON), to keep elsewhere for `verify --head`");
  head->add_option("--data", ho->data_dir, "data directory of the server")->required()->envname("BERTH_DATA");
  head->add_option("--audit-key", ho->audit_key_file, "the audit key file (default: berth serve's default)")
      ->envname("BERTH_AUDIT_KEY");
  head->callback([ho] {
    bool found = false;
    auto key = private_key(ho->audit_key_file, true, &found);
    auto log = open_log(ho->data_dir);
    auto seq = log->last_seq();
    event_record last;
    bool got = false;
    if (seq > 0)
      log->scan(seq, [&](const event_record& e) {
        got = e.seq == seq;
        last = e;
        return false;
      });
    if (!got) usage_error("the event log is empty: nothing to sign");
    signed_head h;
    if (auto s = sign_head(key, last.seq, last.hash, &h); !s) usage_error(s.message());
    std::cout << dump_json(to_json(h)) << std::endl;
  });

  struct key_options {
    std::string audit_key_file;
    bool json_output = false;
  };
  auto ko = std::make_shared<key_options>();
  auto* key = audit->add_subcommand("key", "print the audit key's public half (PEM) for `verify --public-key`");
  key->add_option("--audit-key", ko->audit_key_file, "the audit key file (default: berth serve's default)")
      ->envname("BERTH_AUDIT_KEY");
  key->add_flag("--json", ko->json_output, "print {public_key (raw hex), key_id}");
  key->callback([ko] {
    bool found = false;
    auto k = private_key(ko->audit_key_file, true, &found);
    if (ko->json_output)
      std::cout << dump_json(json{{"public_key", k.public_hex()}, {"key_id", k.key_id()}}) << std::endl;
    else
      std::cout << k.public_pem();
  });
}

}  // namespace berth
