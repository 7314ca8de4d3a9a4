#include "runtime/docker/images.hpp"

#include <openssl/evp.h>

#include <chrono>

#include "runtime/docker/build_context.hpp"

namespace berth {

namespace {

constexpr auto kBuildTimeout = std::chrono::hours(1);
constexpr auto kPushTimeout = std::chrono::minutes(30);

// The engine's text comes in pieces that need not end at a line; the caller gets whole lines.
struct line_splitter {
  const line_sink& output;
  std::string pending;
  void add(const std::string& text) {
    pending += text;
    size_t start = 0;
    for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) emit(pending.substr(start, nl - start));
    pending.erase(0, start);
  }
  void emit(std::string line) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (output) output(line);
  }
  void flush() {
    if (!pending.empty()) emit(pending);
    pending.clear();
  }
};

// The engine's words in a stream message that reports a failure ("" when it does not).
std::string stream_error(const nlohmann::json& m) {
  if (!m.is_object()) return "";
  if (m.contains("errorDetail") && m["errorDetail"].is_object() && m["errorDetail"].contains("message"))
    return m["errorDetail"]["message"].is_string() ? m["errorDetail"]["message"].get<std::string>() : "error";
  if (m.contains("error")) return m["error"].is_string() ? m["error"].get<std::string>() : m["error"].dump();
  return "";
}

// X-Registry-Auth is base64url (the engine decodes with URLEncoding) of {username, password}.
std::string registry_auth_header(const std::string& auth, const std::string& registry) {
  nlohmann::json j = nlohmann::json::object();
  if (!auth.empty()) {
    auto colon = auth.find(':');
    j["username"] = auth.substr(0, colon);
    j["password"] = colon == std::string::npos ? "" : auth.substr(colon + 1);
    j["serveraddress"] = registry;
  }
  std::string raw = j.dump();
  std::string b64(4 * ((raw.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()),
                          reinterpret_cast<const unsigned char*>(raw.data()), static_cast<int>(raw.size()));
  b64.resize(static_cast<size_t>(n));
  for (auto& c : b64) c = c == '+' ? '-' : c == '/' ? '_' : c;
  return "X-Registry-Auth: " + b64;
}

// Build failures that are the engine's (its network, its disk), not the release's: transient.
bool engine_fault(const std::string& words) {
  for (const char* m : {"failed to create endpoint", "no space left on device", "failed to create shim"})
    if (words.find(m) != std::string::npos) return true;
  return false;
}

}  // namespace

std::string release_image(const std::string& project, const std::string& release) {
  return "berth/" + project + ":" + release;
}

std::map<std::string, std::string> release_image_labels(const std::string& project, const std::string& release,
                                                        const std::string& env, const std::string& data_dir) {
  return {{"berth.project", project}, {"berth.release", release}, {"berth.env", env}, {"berth.data_dir", data_dir}};
}

std::string label_filter(const std::map<std::string, std::string>& labels, const std::string& extra_key,
                         const std::string& extra_value) {
  nlohmann::json f = nlohmann::json::object();
  f["label"] = nlohmann::json::array();
  for (auto& [k, v] : labels) f["label"].push_back(k + "=" + v);
  if (!extra_key.empty()) f[extra_key] = nlohmann::json::array({extra_value});
  return "filters=" + url_encode(f.dump());
}

status generated_dockerfile(const std::string& base, const std::vector<std::string>& command, std::string* out) {
  if (base.empty()) return status::invalid_argument("image.base is required when the release has no Dockerfile");
  if (command.empty())
    return status::invalid_argument("production.command is required when the release has no Dockerfile");
  if (base.find_first_of("\r\n") != std::string::npos) return status::invalid_argument("image.base is not an image name");
  *out = "FROM " + base + "\nCOPY . /app\nWORKDIR /app\nCMD " + nlohmann::json(command).dump() + "\n";
  return status::ok();
}

status image_exists(const docker_engine& engine, const std::string& ref, bool* exists, nlohmann::json* inspect) {
  engine_reply r;
  if (auto s = engine.call("GET", "/images/" + ref + "/json", nullptr, &r, std::chrono::seconds(10)); !s)
    return s;
  if (r.http == 404) {
    *exists = false;
    return status::ok();
  }
  if (!r.ok()) return status::io_error(r.error());
  *exists = true;
  if (inspect) *inspect = std::move(r.body);
  return status::ok();
}

status build_image(const docker_engine& engine, const image_build& b, const line_sink& output,
                   const std::function<bool()>& cancelled) {
  auto context = build_context_path(b.data_dir);
  struct remove_after {
    std::filesystem::path p;
    ~remove_after() {
      std::error_code ec;
      std::filesystem::remove(p, ec);
    }
  } cleanup{context};
  // The classic builder turns the `labels` parameter into one LABEL step (a container) per
  // label: a generated Dockerfile carries them in a single LABEL line instead.
  std::error_code ec;
  bool own = std::filesystem::exists(b.folder / "Dockerfile", ec);
  std::string dockerfile = b.dockerfile;
  if (!own && !dockerfile.empty() && !b.labels.empty()) {
    dockerfile += "LABEL";
    for (auto& [k, v] : b.labels) dockerfile += " " + nlohmann::json(k).dump() + "=" + nlohmann::json(v).dump();
    dockerfile += "\n";
  }
  if (auto s = write_build_context(b.folder, dockerfile, context); !s) return s;
  std::string path = "/build?t=" + url_encode(b.tag) + "&rm=1&forcerm=1";
  if (own) path += "&labels=" + url_encode(nlohmann::json(b.labels).dump());
  line_splitter lines{output, {}};
  std::string failure;
  long http = 0;
  auto s = engine.stream_json(
      "POST", path, context, "application/x-tar", {},
      [&](const nlohmann::json& m) {
        if (auto e = stream_error(m); !e.empty()) {
          failure = e;
          return true;
        }
        if (m.contains("stream") && m["stream"].is_string()) lines.add(m["stream"].get<std::string>());
        else if (m.contains("status") && m["status"].is_string()) lines.add(m["status"].get<std::string>() + "\n");
        else if (m.contains("message") && m["message"].is_string()) failure = m["message"].get<std::string>();
        return true;
      },
      cancelled, kBuildTimeout, &http);
  lines.flush();
  if (!s) return s;
  if (cancelled && cancelled()) return status::io_error("the image build was cancelled");
  if (http >= 500 && failure.empty()) return status::io_error("the Docker engine answered " + std::to_string(http));
  if (!failure.empty() || http < 200 || http >= 300) {
    // 4xx, and errors in the stream, are the release's: a Dockerfile that does not parse, a
    // step that fails, a base image that is not there.
    if (failure.empty()) failure = "the Docker engine answered " + std::to_string(http);
    while (!failure.empty() && failure.back() == '\n') failure.pop_back();
    if (output) output("image build failed: " + failure);
    if (engine_fault(failure)) return status::io_error("the Docker engine failed the image build: " + failure);
    return status::invalid_argument("the image build failed: " + failure);
  }
  return status::ok();
}

status remove_image(const docker_engine& engine, const std::string& ref, bool force, bool* in_use) {
  if (in_use) *in_use = false;
  engine_reply r;
  if (auto s = engine.call("DELETE", "/images/" + ref + (force ? "?force=1" : ""), nullptr, &r); !s)
    return s;
  if (r.http == 404 || r.ok()) return status::ok();
  if (r.http == 409) {
    if (in_use) *in_use = true;
    return status::ok();
  }
  return status::io_error(r.error());
}

status push_image(const docker_engine& engine, const std::string& local, const std::string& registry,
                  const std::string& auth, const line_sink& output, const std::function<bool()>& cancelled,
                  std::string* pushed) {
  if (registry.empty()) return status::invalid_argument("no registry to push to");
  auto colon = local.rfind(':');
  std::string repo = registry + "/" + local.substr(0, colon);
  std::string tag = colon == std::string::npos ? "latest" : local.substr(colon + 1);
  engine_reply r;
  if (auto s = engine.call("POST", "/images/" + local + "/tag?repo=" + url_encode(repo) +
                                       "&tag=" + url_encode(tag),
                           nullptr, &r);
      !s)
    return s;
  if (r.http == 404) return status::not_found("no image " + local + " to push");
  if (!r.ok()) return status::io_error(r.error());
  line_splitter lines{output, {}};
  std::string failure;
  long http = 0;
  auto s = engine.stream_json(
      "POST", "/images/" + repo + "/push?tag=" + url_encode(tag), {}, "",
      {registry_auth_header(auth, registry)},
      [&](const nlohmann::json& m) {
        if (auto e = stream_error(m); !e.empty()) failure = e;
        else if (m.contains("message") && m["message"].is_string()) failure = m["message"].get<std::string>();
        else if (m.contains("status") && m["status"].is_string()) {
          std::string line = m["status"].get<std::string>();
          if (m.contains("id") && m["id"].is_string()) line = m["id"].get<std::string>() + ": " + line;
          lines.add(line + "\n");
        }
        return true;
      },
      cancelled, kPushTimeout, &http);
  lines.flush();
  if (!s) return s;
  if (cancelled && cancelled()) return status::io_error("the image push was cancelled");
  if (!failure.empty() || http < 200 || http >= 300) {
    if (failure.empty()) failure = "the Docker engine answered " + std::to_string(http);
    if (output) output("image push failed: " + failure);
    return status::invalid_argument("pushing " + repo + ":" + tag + " failed: " + failure);
  }
  if (pushed) *pushed = repo + ":" + tag;
  return status::ok();
}

status prune_project_images(const docker_engine& engine, const std::string& project, const std::string& data_dir) {
  engine_reply r;
  auto filter = label_filter({{"berth.project", project}, {"berth.data_dir", data_dir}}, "dangling", "true");
  if (auto s = engine.call("POST", "/images/prune?" + filter, nullptr, &r, std::chrono::minutes(2)); !s) return s;
  // 409: another prune is running (the engine allows one at a time); that one does the work.
  if (!r.ok() && r.http != 409) return status::io_error(r.error());
  return status::ok();
}

status project_images(const docker_engine& engine, const std::string& project, const std::string& data_dir,
                      std::vector<std::string>* ids) {
  engine_reply r;
  auto filter = label_filter({{"berth.project", project}, {"berth.data_dir", data_dir}});
  if (auto s = engine.call("GET", "/images/json?" + filter, nullptr, &r); !s) return s;
  if (!r.ok()) return status::io_error(r.error());
  ids->clear();
  if (r.body.is_array())
    for (auto& i : r.body)
      if (i.contains("Id") && i["Id"].is_string()) ids->push_back(i["Id"].get<std::string>());
  return status::ok();
}

}  // namespace berth
