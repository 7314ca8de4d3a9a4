#include "messages/manifest.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <set>

#include "messages/domains.hpp"

namespace berth {

namespace {

using json = nlohmann::json;

const std::set<std::string>& reserved_names() {
  static const std::set<std::string> names{
      "api",     "www",     "admin",   "health",  "metrics", "berth",  "root",
      "status",  "static",  "assets",  "mail",    "smtp",    "ftp",    "localhost",
      "preview", "production", "deploy", "deployment", "deployments", "system",
      "default", "proxy",   "caddy",   "dashboard", "console", "login", "auth",
      "internal", "events", "logs",    "docs",    "support", "help",   "test"};
  return names;
}

// A tiny strict reader: every accessor records the first error with its field path.
class reader {
 public:
  std::string error;

  bool object(const json& j, const std::string& path, std::initializer_list<const char*> allowed) {
    if (!j.is_object()) return fail(path, "must be an object");
    for (auto& item : j.items()) {
      const auto& key = item.key();  // not a structured binding: lambdas capture those in C++20
      if (std::find_if(allowed.begin(), allowed.end(),
                       [&](const char* a) { return key == a; }) == allowed.end())
        return fail(path.empty() ? key : path + "." + key, "unknown field");
    }
    return true;
  }

  bool string(const json& j, const std::string& path, std::string& out, size_t max_len,
              bool required = false) {
    if (!j.is_string()) return fail(path, required ? "is required (a string)" : "must be a string");
    out = j.get<std::string>();
    if (out.empty()) return fail(path, "must not be empty");
    if (out.size() > max_len) return fail(path, "is too long");
    if (out.find('\0') != std::string::npos) return fail(path, "must not contain NUL");
    return true;
  }

  bool argv(const json& j, const std::string& path, std::vector<std::string>& out) {
    if (!j.is_array() || j.empty()) return fail(path, "must be a non-empty array of strings");
    if (j.size() > 256) return fail(path, "has too many elements");
    out.clear();
    for (size_t i = 0; i < j.size(); ++i) {
      std::string s;
      if (!string(j[i], path + "[" + std::to_string(i) + "]", s, 4096)) return false;
      out.push_back(std::move(s));
    }
    return true;
  }

  bool integer(const json& j, const std::string& path, int& out, int lo, int hi) {
    if (!j.is_number_integer()) return fail(path, "must be an integer");
    auto v = j.get<int64_t>();
    if (v < lo || v > hi)
      return fail(path, "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
    out = static_cast<int>(v);
    return true;
  }

  bool number(const json& j, const std::string& path, double& out, double lo, double hi) {
    if (!j.is_number()) return fail(path, "must be a number");
    auto v = j.get<double>();
    if (!(v >= lo && v <= hi)) return fail(path, "must be between " + fmt_number(lo) + " and " + fmt_number(hi));
    out = v;
    return true;
  }

  bool boolean(const json& j, const std::string& path, bool& out) {
    if (!j.is_boolean()) return fail(path, "must be true or false");
    out = j.get<bool>();
    return true;
  }

  static std::string fmt_number(double v) {
    auto s = std::to_string(v);
    s.erase(s.find_last_not_of('0') + 1);
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
  }

  bool fail(const std::string& path, const std::string& what) {
    if (error.empty()) error = path + ": " + what;
    return false;
  }
};

bool valid_env_key(const std::string& k) {
  if (k.empty() || k.size() > 128) return false;
  if (!(std::isalpha(static_cast<unsigned char>(k[0])) || k[0] == '_')) return false;
  return std::all_of(k.begin(), k.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

bool read_health(reader& r, const json& j, const std::string& path, health_spec& h) {
  if (!r.object(j, path, {"path", "timeout_s", "interval_ms", "min_healthy_s"})) return false;
  if (j.contains("path")) {
    if (!r.string(j["path"], path + ".path", h.path, 1024)) return false;
    if (h.path[0] != '/') return r.fail(path + ".path", "must start with '/'");
  }
  if (j.contains("timeout_s") && !r.integer(j["timeout_s"], path + ".timeout_s", h.timeout_s, 1, 3600))
    return false;
  if (j.contains("interval_ms") &&
      !r.integer(j["interval_ms"], path + ".interval_ms", h.interval_ms, 10, 60000))
    return false;
  if (j.contains("min_healthy_s") &&
      !r.integer(j["min_healthy_s"], path + ".min_healthy_s", h.min_healthy_s, 0, 3600))
    return false;
  return true;
}

// production.canary: {} takes every default (steps [10, 50]).
bool read_canary(reader& r, const json& j, canary_spec& c) {
  const std::string path = "production.canary";
  if (!r.object(j, path,
                {"steps", "interval_s", "min_requests", "max_error_rate", "max_p99_ratio", "p99_slack_ms",
                 "on_no_traffic", "sticky"}))
    return false;
  c.steps = {10, 50};
  if (j.contains("steps")) {
    const auto& s = j["steps"];
    if (!s.is_array() || s.empty() || s.size() > 10)
      return r.fail(path + ".steps", "must be an array of 1 to 10 percentages");
    c.steps.clear();
    for (size_t i = 0; i < s.size(); ++i) {
      int v = 0;
      if (!r.integer(s[i], path + ".steps[" + std::to_string(i) + "]", v, 1, 99)) return false;
      if (!c.steps.empty() && v <= c.steps.back()) return r.fail(path + ".steps", "must be ascending");
      c.steps.push_back(v);
    }
  }
  if (j.contains("interval_s") && !r.integer(j["interval_s"], path + ".interval_s", c.interval_s, 1, 3600))
    return false;
  if (j.contains("min_requests") &&
      !r.integer(j["min_requests"], path + ".min_requests", c.min_requests, 1, 1000000))
    return false;
  if (j.contains("max_error_rate") &&
      !r.number(j["max_error_rate"], path + ".max_error_rate", c.max_error_rate, 0, 1))
    return false;
  if (j.contains("max_p99_ratio") &&
      !r.number(j["max_p99_ratio"], path + ".max_p99_ratio", c.max_p99_ratio, 1, 100))
    return false;
  if (j.contains("p99_slack_ms") && !r.integer(j["p99_slack_ms"], path + ".p99_slack_ms", c.p99_slack_ms, 0, 60000))
    return false;
  if (j.contains("on_no_traffic")) {
    if (!r.string(j["on_no_traffic"], path + ".on_no_traffic", c.on_no_traffic, 16)) return false;
    if (c.on_no_traffic != "promote" && c.on_no_traffic != "fail")
      return r.fail(path + ".on_no_traffic", "must be 'promote' or 'fail'");
  }
  if (j.contains("sticky") && !r.boolean(j["sticky"], path + ".sticky", c.sticky)) return false;
  return true;
}

// source.workspace: {} or {"seed": {"path": "/abs"}} or {"seed": {"git": URL, "ref": R}}.
bool read_workspace(reader& r, const json& src, manifest& m, bool from_log) {
  if (src.size() != 1) return r.fail("source", "'workspace' cannot be combined with 'path', 'git' or 'ref'");
  const auto& w = src["workspace"];
  if (!r.object(w, "source.workspace", {"seed"})) return false;
  m.source_workspace = true;
  if (!w.contains("seed")) return true;
  const auto& seed = w["seed"];
  if (!r.object(seed, "source.workspace.seed", {"path", "git", "ref"})) return false;
  if (seed.contains("path") == seed.contains("git"))
    return r.fail("source.workspace.seed", "needs exactly one of 'path' or 'git'");
  if (seed.contains("path")) {
    if (!r.string(seed["path"], "source.workspace.seed.path", m.seed_path, 4096)) return false;
    if (m.seed_path[0] != '/') return r.fail("source.workspace.seed.path", "must be absolute");
    if (seed.contains("ref")) return r.fail("source.workspace.seed.ref", "applies only to git seeds");
    return true;
  }
  if (!r.string(seed["git"], "source.workspace.seed.git", m.seed_git, 4096)) return false;
  if (m.seed_git[0] == '-') return r.fail("source.workspace.seed.git", "must not start with '-'");
  if (!from_log && git_url_has_credentials(m.seed_git))
    return r.fail("source.workspace.seed.git", "must not contain credentials (user info such as 'user:token@')");
  m.seed_ref = "main";
  if (seed.contains("ref")) {
    if (!r.string(seed["ref"], "source.workspace.seed.ref", m.seed_ref, 256)) return false;
    if (m.seed_ref[0] == '-') return r.fail("source.workspace.seed.ref", "must not start with '-'");
  }
  return true;
}

// `limits`: every field optional; numbers within the bounds of messages/limits.hpp.
bool read_limits(reader& r, const json& j, const std::string& path, resource_limits& l) {
  if (!r.object(j, path, {"memory_mb", "cpu", "pids"})) return false;
  if (j.contains("memory_mb") &&
      !r.integer(j["memory_mb"], path + ".memory_mb", l.memory_mb, kMinMemoryMb, kMaxMemoryMb))
    return false;
  if (j.contains("cpu")) {
    const auto& c = j["cpu"];
    if (!c.is_number()) return r.fail(path + ".cpu", "must be a number of cores (e.g. 0.5)");
    double v = c.get<double>();
    if (!(v >= kMinCpu && v <= kMaxCpu))
      return r.fail(path + ".cpu", "must be between 0.01 and 1024 (cores)");
    l.cpu = v;
  }
  if (j.contains("pids") && !r.integer(j["pids"], path + ".pids", l.pids, kMinPids, kMaxPids)) return false;
  return true;
}

bool read_string_map(reader& r, const json& j, const std::string& path,
                     std::map<std::string, std::string>& out) {
  if (!j.is_object()) return r.fail(path, "must be an object of strings");
  if (j.size() > 512) return r.fail(path, "has too many entries");
  for (auto& [k, v] : j.items()) {
    if (!valid_env_key(k)) return r.fail(path + "." + k, "is not a valid variable name");
    if (k == "PORT" || k == "HOST") return r.fail(path + "." + k, "is set by berth");
    if (!v.is_string()) return r.fail(path + "." + k, "must be a string");
    auto s = v.get<std::string>();
    if (s.size() > 65536) return r.fail(path + "." + k, "is too long");
    if (s.find('\0') != std::string::npos) return r.fail(path + "." + k, "must not contain NUL");
    out[k] = std::move(s);
  }
  return true;
}

bool safe_relative_path(const std::string& p) {
  if (p.empty() || p[0] == '/') return false;
  size_t start = 0;
  while (start <= p.size()) {
    auto end = p.find('/', start);
    if (end == std::string::npos) end = p.size();
    auto part = p.substr(start, end - start);
    if (part == ".." || part == "." || part.empty()) return false;
    start = end + 1;
  }
  return true;
}

bool valid_volume_name(const std::string& n) {
  if (n.empty() || n.size() > 64 || !std::isalnum(static_cast<unsigned char>(n[0]))) return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
}

// `runtime`, `image` and `volumes`; production.replicas was read with production.
bool read_container_fields(reader& r, const json& j, manifest& m) {
  if (j.contains("runtime")) {
    if (!r.string(j["runtime"], "runtime", m.runtime, 16)) return false;
    if (m.runtime != "process" && m.runtime != "docker" && m.runtime != "swarm")
      return r.fail("runtime", "must be \"process\", \"docker\" or \"swarm\"");
  }
  if (!m.containers()) {
    for (const char* f : {"image", "volumes"})
      if (j.contains(f)) return r.fail(f, "applies only to the docker and swarm runtimes");
    if (m.replicas != 1) return r.fail("production.replicas", "applies only to the swarm runtime");
    return true;
  }
  if (m.runtime == "docker" && m.replicas != 1)
    return r.fail("production.replicas", "applies only to the swarm runtime (docker runs one container a release)");
  if (j.contains("image")) {
    const auto& im = j["image"];
    if (!r.object(im, "image", {"base", "port", "healthcheck", "registry", "registry_secret"})) return false;
    if (im.contains("base")) {
      if (!r.string(im["base"], "image.base", m.image_base, 512)) return false;
      if (m.image_base.find_first_of(" \t\r\n") != std::string::npos)
        return r.fail("image.base", "must be an image reference (no spaces)");
    }
    if (im.contains("port") && !r.integer(im["port"], "image.port", m.image_port, 1, 65535)) return false;
    if (im.contains("healthcheck") && !r.argv(im["healthcheck"], "image.healthcheck", m.image_healthcheck))
      return false;
    if (im.contains("registry")) {
      if (!r.string(im["registry"], "image.registry", m.image_registry, 256)) return false;
      if (m.image_registry.find_first_of("/ \t@") != std::string::npos)
        return r.fail("image.registry", "must be host[:port]");
    }
    if (im.contains("registry_secret") &&
        !r.string(im["registry_secret"], "image.registry_secret", m.image_registry_secret, 128))
      return false;
    if (!m.image_registry_secret.empty() && m.image_registry.empty())
      return r.fail("image.registry_secret", "needs image.registry");
  }
  if (j.contains("volumes")) {
    const auto& v = j["volumes"];
    if (!v.is_object()) return r.fail("volumes", "must be an object of volume name -> path inside the container");
    if (v.size() > 16) return r.fail("volumes", "has too many entries (at most 16)");
    for (auto& [name, where] : v.items()) {
      if (!valid_volume_name(name))
        return r.fail("volumes." + name, "is not a valid volume name (a-z, 0-9, '-', '_'; at most 64)");
      std::string path;
      if (!r.string(where, "volumes." + name, path, 1024)) return false;
      if (path[0] != '/' || (path.size() > 1 && !safe_relative_path(path.substr(1))))
        return r.fail("volumes." + name, "must be an absolute path without '.' or '..' parts");
      if (path == "/") return r.fail("volumes." + name, "must not be the container's root");
      m.volumes[name] = path;
    }
  }
  return true;
}

// `domains`: custom domains of the production site, each valid and named once. Whether one is
// berth's own (under the domain suffix) or another project's is decided by the projects actor.
bool read_domains(reader& r, const json& j, manifest& m) {
  if (!j.is_array()) return r.fail("domains", "must be an array of domain names");
  if (j.size() > kMaxDomains) return r.fail("domains", "has too many entries (at most " + std::to_string(kMaxDomains) + ")");
  for (size_t i = 0; i < j.size(); ++i) {
    auto path = "domains[" + std::to_string(i) + "]";
    if (!j[i].is_string()) return r.fail(path, "must be a string");
    auto d = j[i].get<std::string>();
    if (auto why = check_domain(d); !why.empty()) return r.fail(path, "'" + d.substr(0, 300) + "' " + why);
    if (std::find(m.domains.begin(), m.domains.end(), d) != m.domains.end())
      return r.fail(path, "'" + d + "' is named twice");
    m.domains.push_back(std::move(d));
  }
  return true;
}

}  // namespace

name_check check_name(const std::string& name) {
  if (name.size() < 3) return {false, "must be at least 3 characters"};
  if (name.size() > 63) return {false, "must be at most 63 characters"};
  if (!(name[0] >= 'a' && name[0] <= 'z')) return {false, "must start with a lowercase letter"};
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
      return {false, "may contain only lowercase letters, digits and '-'"};
  if (name.back() == '-') return {false, "must end with a letter or digit"};
  if (reserved_names().count(name)) return {false, "is reserved"};
  return {true, ""};
}

bool git_url_has_credentials(const std::string& url) {
  auto scheme_end = url.find("://");
  auto authority_start = scheme_end == std::string::npos ? 0 : scheme_end + 3;
  auto authority_end = url.find_first_of("/?#", authority_start);
  auto at = url.rfind('@', authority_end == std::string::npos ? std::string::npos : authority_end);
  if (at == std::string::npos || at < authority_start) return false;
  auto userinfo = url.substr(authority_start, at - authority_start);
  if (userinfo.find(':') != std::string::npos) return true;  // user:password
  if (scheme_end == std::string::npos) return false;          // scp-like git@host:path
  auto scheme = url.substr(0, scheme_end);
  std::transform(scheme.begin(), scheme.end(), scheme.begin(), [](unsigned char c) { return std::tolower(c); });
  return scheme != "ssh" && scheme != "git+ssh" && scheme != "ssh+git";  // a user alone is not a secret in ssh
}

std::string git_url_for_display(const std::string& url) {
  if (!git_url_has_credentials(url)) return url;
  auto scheme_end = url.find("://");
  auto authority_start = scheme_end == std::string::npos ? 0 : scheme_end + 3;
  auto authority_end = url.find_first_of("/?#", authority_start);
  auto at = url.rfind('@', authority_end == std::string::npos ? std::string::npos : authority_end);
  return url.substr(0, authority_start) + "***" + url.substr(at);
}

manifest_result parse_manifest(const json& j, bool from_log) {
  manifest_result res;
  reader r;
  manifest& m = res.value;
  auto done = [&]() {
    res.ok = r.error.empty();
    res.error = r.error;
    return res;
  };
  if (!r.object(j, "", {"name", "source", "preview", "build", "production", "env", "secrets", "runtime", "image",
                        "volumes", "domains"}))
    return done();
  if (!j.contains("name")) return r.fail("name", "is required"), done();
  if (!r.string(j["name"], "name", m.name, 1024, true)) return done();
  if (auto nc = check_name(m.name); !nc.valid) return r.fail("name", nc.reason), done();

  if (!j.contains("source")) return r.fail("source", "is required"), done();
  const auto& src = j["source"];
  if (!r.object(src, "source", {"path", "git", "ref", "credentials_secret", "workspace"})) return done();
  if (src.contains("workspace")) {
    if (!read_workspace(r, src, m, from_log)) return done();
  } else if (src.contains("path") == src.contains("git")) {
    return r.fail("source", "needs exactly one of 'path', 'git' or 'workspace'"), done();
  } else if (src.contains("path")) {
    if (!r.string(src["path"], "source.path", m.source_path, 4096)) return done();
    if (m.source_path[0] != '/') return r.fail("source.path", "must be absolute"), done();
    if (src.contains("ref")) return r.fail("source.ref", "applies only to git sources"), done();
    if (src.contains("credentials_secret"))
      return r.fail("source.credentials_secret", "applies only to git sources"), done();
  } else {
    if (!r.string(src["git"], "source.git", m.source_git, 4096)) return done();
    if (m.source_git[0] == '-') return r.fail("source.git", "must not start with '-'"), done();
    if (!from_log && git_url_has_credentials(m.source_git))
      return r.fail("source.git", "must not contain credentials (user info such as 'user:token@'): berth would "
                                  "keep them in its log and answers; put the credential in a secret (a token, or "
                                  "'user:token') and name it in source.credentials_secret"),
             done();
    m.source_ref = "main";
    if (src.contains("ref")) {
      if (!r.string(src["ref"], "source.ref", m.source_ref, 256)) return done();
      if (m.source_ref[0] == '-') return r.fail("source.ref", "must not start with '-'"), done();
    }
    if (src.contains("credentials_secret")) {
      if (!r.string(src["credentials_secret"], "source.credentials_secret", m.source_credentials_secret, 128))
        return done();
      auto lower = m.source_git.substr(0, 8);
      std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
      if (lower.rfind("https://", 0) != 0 && lower.rfind("http://", 0) != 0)
        return r.fail("source.credentials_secret", "applies only to http(s) git URLs"), done();
    }
  }

  if (j.contains("preview")) {
    const auto& p = j["preview"];
    if (!r.object(p, "preview", {"command", "health", "limits"})) return done();
    if (p.contains("limits") && !read_limits(r, p["limits"], "preview.limits", m.preview_limits)) return done();
    if (p.contains("command") && !r.argv(p["command"], "preview.command", m.preview_command))
      return done();
    if (p.contains("health") && !read_health(r, p["health"], "preview.health", m.preview_health))
      return done();
  }
  if (j.contains("build")) {
    const auto& b = j["build"];
    if (!r.object(b, "build", {"command", "artifacts", "secrets", "limits"})) return done();
    if (b.contains("limits") && !read_limits(r, b["limits"], "build.limits", m.build_limits)) return done();
    if (b.contains("command") && !r.argv(b["command"], "build.command", m.build_command))
      return done();
    if (b.contains("artifacts")) {
      if (!r.argv(b["artifacts"], "build.artifacts", m.artifacts)) return done();
      for (auto& a : m.artifacts)
        if (!safe_relative_path(a))
          return r.fail("build.artifacts", "'" + a + "' must be a relative path inside the build"),
                 done();
    }
    if (b.contains("secrets")) {
      const auto& names = b["secrets"];
      if (!names.is_array()) return r.fail("build.secrets", "must be an array of secret names"), done();
      for (size_t i = 0; i < names.size(); ++i) {
        std::string n;
        if (!r.string(names[i], "build.secrets[" + std::to_string(i) + "]", n, 128)) return done();
        if (std::find(m.build_secrets.begin(), m.build_secrets.end(), n) == m.build_secrets.end())
          m.build_secrets.push_back(std::move(n));
      }
    }
  }
  if (j.contains("production")) {
    const auto& p = j["production"];
    if (!r.object(p, "production", {"command", "health", "keep", "limits", "replicas", "canary"})) return done();
    if (p.contains("canary") && !read_canary(r, p["canary"], m.canary)) return done();
    if (p.contains("replicas") && !r.integer(p["replicas"], "production.replicas", m.replicas, 1, 100)) return done();
    if (p.contains("limits") && !read_limits(r, p["limits"], "production.limits", m.production_limits))
      return done();
    if (p.contains("command") && !r.argv(p["command"], "production.command", m.production_command))
      return done();
    if (p.contains("health") &&
        !read_health(r, p["health"], "production.health", m.production_health))
      return done();
    if (p.contains("keep") && !r.integer(p["keep"], "production.keep", m.keep, 1, 100))
      return done();
  }
  if (!read_container_fields(r, j, m)) return done();
  if (j.contains("domains") && !read_domains(r, j["domains"], m)) return done();
  if (j.contains("env") && !read_string_map(r, j["env"], "env", m.env)) return done();
  if (j.contains("secrets") && !read_string_map(r, j["secrets"], "secrets", m.secrets))
    return done();
  // Names of secrets must name secrets: a typo would silently give the build nothing.
  for (auto& n : m.build_secrets)
    if (!m.secrets.count(n))
      return r.fail("build.secrets", "'" + n + "' is not one of the project's secrets"), done();
  if (!m.image_registry_secret.empty() && !m.secrets.count(m.image_registry_secret))
    return r.fail("image.registry_secret", "'" + m.image_registry_secret + "' is not one of the project's secrets"),
           done();
  if (!m.source_credentials_secret.empty() && !m.secrets.count(m.source_credentials_secret))
    return r.fail("source.credentials_secret", "'" + m.source_credentials_secret + "' is not one of the project's secrets"),
           done();
  return done();
}

namespace {
json health_json(const health_spec& h) {
  return {{"path", h.path},
          {"timeout_s", h.timeout_s},
          {"interval_ms", h.interval_ms},
          {"min_healthy_s", h.min_healthy_s}};
}
}  // namespace

json to_json(const manifest& m, bool with_secret_values) {
  json j;
  j["name"] = m.name;
  if (m.source_workspace) {
    json seed = json::object();
    if (!m.seed_path.empty()) seed = {{"path", m.seed_path}};
    if (!m.seed_git.empty()) seed = {{"git", git_url_for_display(m.seed_git)}, {"ref", m.seed_ref}};
    j["source"] = {{"workspace", seed.empty() ? json::object() : json{{"seed", seed}}}};
  } else if (!m.source_git.empty()) {
    j["source"] = {{"git", with_secret_values ? m.source_git : git_url_for_display(m.source_git)}, {"ref", m.source_ref}};
    if (!m.source_credentials_secret.empty()) j["source"]["credentials_secret"] = m.source_credentials_secret;
  } else
    j["source"] = {{"path", m.source_path}};
  j["preview"] = {{"health", health_json(m.preview_health)}};
  if (!m.preview_command.empty()) j["preview"]["command"] = m.preview_command;
  j["build"] = json::object();
  if (!m.build_command.empty()) j["build"]["command"] = m.build_command;
  if (!m.artifacts.empty()) j["build"]["artifacts"] = m.artifacts;
  if (!m.build_secrets.empty()) j["build"]["secrets"] = m.build_secrets;
  j["production"] = {{"health", health_json(m.production_health)}, {"keep", m.keep}};
  if (!m.production_command.empty()) j["production"]["command"] = m.production_command;
  if (m.preview_limits.any()) j["preview"]["limits"] = to_json(m.preview_limits);
  if (m.build_limits.any()) j["build"]["limits"] = to_json(m.build_limits);
  if (m.production_limits.any()) j["production"]["limits"] = to_json(m.production_limits);
  if (m.runtime != "process") j["runtime"] = m.runtime;
  if (m.containers()) {
    json image = json::object();
    if (!m.image_base.empty()) image["base"] = m.image_base;
    if (m.image_port) image["port"] = m.image_port;
    if (!m.image_healthcheck.empty()) image["healthcheck"] = m.image_healthcheck;
    if (!m.image_registry.empty()) image["registry"] = m.image_registry;
    if (!m.image_registry_secret.empty()) image["registry_secret"] = m.image_registry_secret;
    j["image"] = image;
    j["volumes"] = m.volumes;
  }
  if (m.runtime == "swarm") j["production"]["replicas"] = m.replicas;
  if (m.canary.enabled()) {
    auto& c = m.canary;
    j["production"]["canary"] = {{"steps", c.steps},
                                 {"interval_s", c.interval_s},
                                 {"min_requests", c.min_requests},
                                 {"max_error_rate", c.max_error_rate},
                                 {"max_p99_ratio", c.max_p99_ratio},
                                 {"p99_slack_ms", c.p99_slack_ms},
                                 {"on_no_traffic", c.on_no_traffic},
                                 {"sticky", c.sticky}};
  }
  if (!m.domains.empty()) j["domains"] = m.domains;
  j["env"] = m.env;
  json secrets = json::object();
  for (auto& [k, v] : m.secrets) secrets[k] = with_secret_values ? v : "********";
  j["secrets"] = secrets;
  return j;
}

}  // namespace berth
