// The replay snapshot encoding (replay_snapshot.hpp): "berth-replay" magic, a format version,
// seq and hash, then every project_state field by field and the port table. Integers are
// little-endian fixed width, strings and containers length-prefixed, a deployment's free-form
// resources are CBOR (nlohmann), so a decode is exact.
#include "runtime/eventlog/replay_snapshot.hpp"

#include <cstring>
#include <stdexcept>
#include <type_traits>

#include <nlohmann/json.hpp>

namespace berth::detail {

namespace {

constexpr char kMagic[] = "berth-replay";  // 12 bytes, then the version
// Bump when any folded struct changes shape: older snapshots are then refused and folded anew.
constexpr uint32_t kVersion = 3;  // 2: workspace sources (manifest seed, project_record.source)
                                  // 3: production.canary, the canary phase

// The folded structs as this encoding knows them. A field added to one of them must be
// encoded below (and kVersion bumped); these fail to compile until then.
static_assert(sizeof(manifest) == 992, "manifest changed: update replay_snapshot.cpp");
static_assert(sizeof(project_record) == 1192, "project_record changed: update replay_snapshot.cpp");
static_assert(sizeof(preview_record) == 176, "preview_record changed: update replay_snapshot.cpp");
static_assert(sizeof(production_record) == 328, "production_record changed: update replay_snapshot.cpp");
static_assert(sizeof(deployment_record) == 320, "deployment_record changed: update replay_snapshot.cpp");
static_assert(sizeof(release_record) == 112, "release_record changed: update replay_snapshot.cpp");
static_assert(sizeof(project_state) == 1720, "project_state changed: update replay_snapshot.cpp");
static_assert(sizeof(instance_ref) == 72, "instance_ref changed: update replay_snapshot.cpp");

struct writer {
  std::string out;

  template <class T, std::enable_if_t<std::is_arithmetic_v<T>, int> = 0>
  void put(T v) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    out.append(b, sizeof(T));
  }
  void put(const std::string& s) {
    put<uint64_t>(s.size());
    out.append(s);
  }
  template <class T>
  void put(const std::vector<T>& v) {
    put<uint64_t>(v.size());
    for (const auto& x : v) put(x);
  }
  template <class K, class V>
  void put(const std::map<K, V>& m) {
    put<uint64_t>(m.size());
    for (const auto& [k, v] : m) {
      put(k);
      put(v);
    }
  }
  void put(const nlohmann::json& j) {
    auto cbor = nlohmann::json::to_cbor(j);
    put<uint64_t>(cbor.size());
    out.append(reinterpret_cast<const char*>(cbor.data()), cbor.size());
  }
  void put(const health_spec& h) { put(h.path), put(h.timeout_s), put(h.interval_ms), put(h.min_healthy_s); }
  void put(const canary_spec& c) {
    put(c.steps), put(c.interval_s), put(c.min_requests), put(c.max_error_rate), put(c.max_p99_ratio);
    put(c.p99_slack_ms), put(c.on_no_traffic), put(c.sticky);
  }
  void put(const resource_limits& l) { put(l.memory_mb), put(l.cpu), put(l.pids); }
  void put(const instance_ref& r) { put(r.id), put(r.port), put(r.pid), put(r.project); }
  void put(const manifest& m) {
    put(m.name), put(m.source_path), put(m.source_git), put(m.source_ref), put(m.source_credentials_secret);
    put(m.preview_command), put(m.preview_health), put(m.build_command), put(m.artifacts), put(m.build_secrets);
    put(m.production_command), put(m.production_health), put(m.keep), put(m.env), put(m.secrets);
    put(m.preview_limits), put(m.build_limits), put(m.production_limits), put(m.runtime), put(m.image_base);
    put(m.image_port), put(m.image_healthcheck), put(m.image_registry), put(m.image_registry_secret);
    put(m.volumes), put(m.replicas), put(m.domains), put(m.source_workspace), put(m.seed_path), put(m.seed_git);
    put(m.seed_ref), put(m.canary);
  }
  void put(const preview_record& p) {
    put(p.status), put(p.process), put(p.reason), put(p.exits_us), put(p.last_seq), put(p.events);
  }
  void put(const phase_span& s) { put(static_cast<uint8_t>(s.p)), put(s.started_us), put(s.ended_us); }
  void put(const deployment_record& d) {
    put(d.id), put(d.project), put(static_cast<uint8_t>(d.kind)), put(d.force), put(d.target);
    put(static_cast<uint8_t>(d.current)), put(d.progress), put(d.message), put(d.phases), put(d.resources);
    put(d.has_error), put(d.error.phase), put(d.error.message), put(d.error.code), put(d.cancel_requested);
    put(d.activated), put(d.created_us), put(d.finished_us), put(d.queued_seq);
  }
  void put(const release_record& r) {
    put(r.hash), put(r.deployment), put(r.created_us), put(r.last_used_us), put(r.deployed_us);
    put(r.rolled_back_to_us), put(r.rolled_back_from_us), put(r.activations);
  }
  void put(const production_record& p) {
    put(p.status), put(p.current), put(p.process), put(p.reason), put(p.exits_us), put(p.releases);
    put(p.deployments), put(p.order), put(p.last_seq), put(p.events);
  }
  void put(const project_state& s) {
    put(s.exists), put(s.name), put(s.spec), put(s.production_port), put(s.preview_port), put(s.created_us);
    put(s.updated_us), put(s.sandbox_uid), put(s.sandbox_gid), put(s.preview), put(s.production);
    put(s.source.hash), put(s.source.files), put(s.source.bytes), put(s.source.via), put(s.source.path);
    put(s.source.seq), put(s.source.ts_us);
    put(s.last_seq), put(s.last_us), put(s.events);
  }
  void put(const port_lease& l) { put(l.port), put(l.project), put(static_cast<uint8_t>(l.kind)); }
};

// Throws std::out_of_range on a value that ends early (caught by decode_replay_snapshot).
struct reader {
  const char* p;
  const char* end;

  void need(uint64_t n) {
    if (n > static_cast<uint64_t>(end - p)) throw std::out_of_range("snapshot ends early");
  }
  template <class T, std::enable_if_t<std::is_arithmetic_v<T>, int> = 0>
  void get(T& v) {
    need(sizeof(T));
    std::memcpy(&v, p, sizeof(T));
    p += sizeof(T);
  }
  void get(bool& v) {
    uint8_t b;
    get(b);
    if (b > 1) throw std::out_of_range("bad boolean");
    v = b == 1;
  }
  template <class E, std::enable_if_t<std::is_enum_v<E>, int> = 0>
  void get_enum(E& e, uint8_t last) {
    uint8_t v;
    get(v);
    if (v > last) throw std::out_of_range("bad enum value");
    e = static_cast<E>(v);
  }
  void get(std::string& s) {
    uint64_t n;
    get(n);
    need(n);
    s.assign(p, n);
    p += n;
  }
  template <class T>
  void get(std::vector<T>& v) {
    uint64_t n;
    get(n);
    need(n);  // every element takes at least a byte: a bad count cannot allocate much
    v.clear();
    v.resize(n);
    for (auto& x : v) get(x);
  }
  template <class K, class V>
  void get(std::map<K, V>& m) {
    uint64_t n;
    get(n);
    need(n);
    m.clear();
    for (uint64_t i = 0; i < n; ++i) {
      K k;
      get(k);
      get(m[k]);
    }
  }
  void get(nlohmann::json& j) {
    uint64_t n;
    get(n);
    need(n);
    j = nlohmann::json::from_cbor(p, p + n);  // throws parse_error on bad bytes
    p += n;
  }
  void get(health_spec& h) { get(h.path), get(h.timeout_s), get(h.interval_ms), get(h.min_healthy_s); }
  void get(canary_spec& c) {
    get(c.steps), get(c.interval_s), get(c.min_requests), get(c.max_error_rate), get(c.max_p99_ratio);
    get(c.p99_slack_ms), get(c.on_no_traffic), get(c.sticky);
  }
  void get(resource_limits& l) { get(l.memory_mb), get(l.cpu), get(l.pids); }
  void get(instance_ref& r) { get(r.id), get(r.port), get(r.pid), get(r.project); }
  void get(manifest& m) {
    get(m.name), get(m.source_path), get(m.source_git), get(m.source_ref), get(m.source_credentials_secret);
    get(m.preview_command), get(m.preview_health), get(m.build_command), get(m.artifacts), get(m.build_secrets);
    get(m.production_command), get(m.production_health), get(m.keep), get(m.env), get(m.secrets);
    get(m.preview_limits), get(m.build_limits), get(m.production_limits), get(m.runtime), get(m.image_base);
    get(m.image_port), get(m.image_healthcheck), get(m.image_registry), get(m.image_registry_secret);
    get(m.volumes), get(m.replicas), get(m.domains), get(m.source_workspace), get(m.seed_path), get(m.seed_git);
    get(m.seed_ref), get(m.canary);
  }
  void get(preview_record& p) {
    get(p.status), get(p.process), get(p.reason), get(p.exits_us), get(p.last_seq), get(p.events);
  }
  void get(phase_span& s) { get_enum(s.p, static_cast<uint8_t>(phase::cancelled)), get(s.started_us), get(s.ended_us); }
  void get(deployment_record& d) {
    get(d.id), get(d.project), get_enum(d.kind, static_cast<uint8_t>(job_kind::rollback)), get(d.force);
    get(d.target), get_enum(d.current, static_cast<uint8_t>(phase::cancelled)), get(d.progress);
    get(d.message), get(d.phases), get(d.resources), get(d.has_error), get(d.error.phase);
    get(d.error.message), get(d.error.code), get(d.cancel_requested), get(d.activated), get(d.created_us);
    get(d.finished_us), get(d.queued_seq);
  }
  void get(release_record& r) {
    get(r.hash), get(r.deployment), get(r.created_us), get(r.last_used_us), get(r.deployed_us);
    get(r.rolled_back_to_us), get(r.rolled_back_from_us), get(r.activations);
  }
  void get(production_record& p) {
    get(p.status), get(p.current), get(p.process), get(p.reason), get(p.exits_us), get(p.releases);
    get(p.deployments), get(p.order), get(p.last_seq), get(p.events);
  }
  void get(project_state& s) {
    get(s.exists), get(s.name), get(s.spec), get(s.production_port), get(s.preview_port), get(s.created_us);
    get(s.updated_us), get(s.sandbox_uid), get(s.sandbox_gid), get(s.preview), get(s.production);
    get(s.source.hash), get(s.source.files), get(s.source.bytes), get(s.source.via), get(s.source.path);
    get(s.source.seq), get(s.source.ts_us);
    get(s.last_seq), get(s.last_us), get(s.events);
  }
  void get(port_lease& l) { get(l.port), get(l.project), get_enum(l.kind, static_cast<uint8_t>(port_kind::candidate)); }
};

bool read_head(reader& in, snapshot_head& head, std::string& why) {
  constexpr size_t kMagicLen = sizeof(kMagic) - 1;
  if (static_cast<size_t>(in.end - in.p) < kMagicLen + 4 || std::memcmp(in.p, kMagic, kMagicLen) != 0) {
    why = "not a replay snapshot";
    return false;
  }
  in.p += kMagicLen;
  uint32_t version;
  in.get(version);
  if (version != kVersion) {
    why = "snapshot format " + std::to_string(version) + " (this berth reads " + std::to_string(kVersion) + ")";
    return false;
  }
  in.get(head.seq);
  in.get(head.hash);
  return true;
}

}  // namespace

std::string encode_replay_snapshot(const log_replay& r, const snapshot_head& head) {
  writer w;
  w.out.append(kMagic, sizeof(kMagic) - 1);
  w.put(kVersion);
  w.put(head.seq);
  w.put(head.hash);
  w.put(r.projects);
  w.put(r.ports);
  return std::move(w.out);
}

bool decode_snapshot_head(const rocksdb::Slice& v, snapshot_head& head, std::string& why) {
  reader in{v.data(), v.data() + v.size()};
  try {
    return read_head(in, head, why);
  } catch (const std::exception& e) {
    why = std::string("snapshot does not decode: ") + e.what();
    return false;
  }
}

bool decode_replay_snapshot(const rocksdb::Slice& v, log_replay& out, snapshot_head& head, std::string& why) {
  reader in{v.data(), v.data() + v.size()};
  try {
    if (!read_head(in, head, why)) return false;
    out = log_replay{};
    in.get(out.projects);
    in.get(out.ports);
  } catch (const std::exception& e) {
    why = std::string("snapshot does not decode: ") + e.what();
    return false;
  }
  if (in.p != in.end) {
    why = "snapshot has trailing bytes";
    return false;
  }
  return true;
}

}  // namespace berth::detail
