#include "messages/project_state.hpp"

namespace berth {

using json = nlohmann::json;

namespace {
json parse_object(const std::string& text) { return payload_object(text); }
}  // namespace

void fold(project_record& s, const event_record& e) {
  if (e.type == ev::sandbox_assigned) {
    auto data = parse_object(e.data);
    s.sandbox_uid = data.value("uid", 0u);
    s.sandbox_gid = data.value("gid", 0u);
    return;
  }
  if (e.type == ev::source_updated) {
    auto data = parse_object(e.data);
    s.source = source_view{data.value("hash", ""), data.value("files", uint64_t{0}), data.value("bytes", uint64_t{0}),
                           data.value("via", ""),  data.value("path", ""),         e.seq,
                           e.ts_us};
    return;
  }
  if (e.type != ev::project_created && e.type != ev::project_updated && e.type != ev::project_deleted) return;
  auto data = parse_object(e.data);
  if (e.type == ev::project_created) {
    s = project_record{};
    s.exists = true;
    s.spec = parse_manifest(data.value("manifest", json::object()), /*from_log=*/true).value;
    s.name = s.spec.name;
    s.production_port = data.value("ports", json::object()).value("production", 0);
    s.preview_port = data.value("ports", json::object()).value("preview", 0);
    s.created_us = s.updated_us = e.ts_us;
    if (auto sb = data.value("sandbox", json::object()); sb.is_object()) {
      s.sandbox_uid = sb.value("uid", 0u);
      s.sandbox_gid = sb.value("gid", 0u);
    }
  } else if (e.type == ev::project_updated) {
    auto parsed = parse_manifest(data.value("manifest", json::object()), /*from_log=*/true);
    if (parsed.ok) s.spec = parsed.value;
    s.updated_us = e.ts_us;
  } else {
    s = project_record{};
  }
}

void fold(project_state& s, const event_record& e) {
  if (e.type == ev::project_created || e.type == ev::project_deleted) s = project_state{};
  fold(static_cast<project_record&>(s), e);
  fold(s.preview, e);
  fold(s.production, e);
  s.last_seq = e.seq;
  s.last_us = e.ts_us;
  s.events = e.type == ev::project_deleted ? 0 : s.events + 1;
}

std::string project_created_data(const manifest& m, uint16_t production_port,
                                 uint16_t preview_port, uint32_t sandbox_uid, uint32_t sandbox_gid) {
  json data{{"manifest", to_json(m)}, {"ports", {{"production", production_port}, {"preview", preview_port}}}};
  if (sandbox_uid != 0) data["sandbox"] = {{"uid", sandbox_uid}, {"gid", sandbox_gid}};
  return dump_json(data);
}

std::string project_updated_data(const manifest& m) { return dump_json({{"manifest", to_json(m)}}); }

std::string sandbox_assigned_data(uint32_t uid, uint32_t gid) { return dump_json({{"uid", uid}, {"gid", gid}}); }

std::string source_updated_data(const std::string& hash, uint64_t files, uint64_t bytes, const std::string& via,
                                const std::string& path) {
  json data{{"hash", hash}, {"files", files}, {"bytes", bytes}, {"via", via}};
  if (!path.empty()) data["path"] = path;
  return dump_json(data);
}

const char* to_string(port_kind k) {
  switch (k) {
    case port_kind::production: return "production";
    case port_kind::preview: return "preview";
    case port_kind::candidate: return "candidate";
  }
  return "production";
}

void fold(port_table& t, const event_record& e) {
  auto data = parse_object(e.data);
  uint16_t port = data.value("port", 0);
  if (e.type == ev::port_leased) {
    port_lease l;
    l.port = port;
    l.project = data.value("project", "");
    auto kind = data.value("kind", "");
    l.kind = kind == "preview" ? port_kind::preview
             : kind == "candidate" ? port_kind::candidate
                                   : port_kind::production;
    t[port] = l;
  } else if (e.type == ev::port_released) {
    t.erase(port);
  }
}

std::string port_leased_data(const port_lease& l) {
  return dump_json({{"port", l.port}, {"project", l.project}, {"kind", to_string(l.kind)}});
}

std::string port_released_data(const port_lease& l, const std::string& reason) {
  return dump_json({{"port", l.port}, {"project", l.project}, {"kind", to_string(l.kind)}, {"reason", reason}});
}

}  // namespace berth
