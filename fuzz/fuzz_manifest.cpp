// Manifest parsing: the body of POST/PUT /api/projects and the --deploy-template file.
// Input: any bytes, parsed as JSON the way the routes do, then parse_manifest. Checked:
// nothing throws or trips a sanitizer; an accepted manifest has a valid name and survives
// its JSON form (with secret values) and the project_created event unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "fuzz/fuzz_check.hpp"
#include "http/render.hpp"
#include "messages/manifest.hpp"
#include "messages/project_state.hpp"

using namespace berth;
using json = nlohmann::json;

namespace {

bool same(const health_spec& a, const health_spec& b) {
  return a.path == b.path && a.timeout_s == b.timeout_s && a.interval_ms == b.interval_ms &&
         a.min_healthy_s == b.min_healthy_s;
}

bool same(const manifest& a, const manifest& b, bool secret_values) {
  return a.name == b.name && a.source_path == b.source_path && a.source_git == b.source_git &&
         a.source_ref == b.source_ref && a.preview_command == b.preview_command &&
         same(a.preview_health, b.preview_health) && a.build_command == b.build_command &&
         a.artifacts == b.artifacts && a.production_command == b.production_command &&
         same(a.production_health, b.production_health) && a.keep == b.keep && a.env == b.env &&
         a.build_secrets == b.build_secrets && a.source_credentials_secret == b.source_credentials_secret &&
         a.preview_limits == b.preview_limits && a.build_limits == b.build_limits &&
         a.production_limits == b.production_limits &&
         (secret_values ? a.secrets == b.secrets : a.secrets.size() == b.secrets.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto j = json::parse(data, data + size, nullptr, false);
  if (j.is_discarded()) return 0;
  auto r = parse_manifest(j);
  if (!r.ok) {
    FUZZ_CHECK(!r.error.empty());
    json{{"error", r.error}}.dump(-1, ' ', false, json::error_handler_t::replace);
    return 0;
  }
  FUZZ_CHECK(r.error.empty());
  const auto& m = r.value;
  FUZZ_CHECK(check_name(m.name).valid);
  FUZZ_CHECK(m.source_path.empty() != m.source_git.empty());
  FUZZ_CHECK(m.keep >= 1 && m.keep <= 100);
  FUZZ_CHECK(m.secrets.count("PORT") == 0 && m.env.count("HOST") == 0);
  // No credential is ever accepted into source.git; every secret named is a secret.
  FUZZ_CHECK(!git_url_has_credentials(m.source_git));
  for (auto& n : m.build_secrets) FUZZ_CHECK(m.secrets.count(n) == 1);
  FUZZ_CHECK(m.source_credentials_secret.empty() || m.secrets.count(m.source_credentials_secret) == 1);

  // The JSON form with secret values parses back to the same manifest.
  auto full = to_json(m, true);
  auto again = parse_manifest(full);
  FUZZ_CHECK(again.ok);
  FUZZ_CHECK(same(m, again.value, true));
  // The masked form (what events and responses carry) never shows a secret value.
  auto masked = to_json(m);
  FUZZ_CHECK(masked["secrets"].size() == m.secrets.size());
  for (auto& [k, v] : masked["secrets"].items()) FUZZ_CHECK(v == "********");

  // Through the project_created event, as the project actor and `audit replay` fold it.
  event_record e;
  e.seq = 7;
  e.stream = project_stream(m.name);
  e.type = ev::project_created;
  e.ts_us = 1'763'900'000'000'000;
  e.data = project_created_data(m, 8123, 4123);
  project_state s;
  fold(s, e);
  FUZZ_CHECK(s.exists && s.name == m.name && s.production_port == 8123 && s.preview_port == 4123);
  FUZZ_CHECK(same(m, s.spec, false));
  to_json(s).dump(-1, ' ', false, json::error_handler_t::replace);
  return 0;
}
