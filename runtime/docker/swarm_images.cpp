// The swarm driver's artifacts: a release image built here, pushed to the registry every node
// pulls from; and what a pruned release or a deleted project leaves behind.
#include <openssl/evp.h>

#include <filesystem>
#include <thread>

#include "runtime/docker/images.hpp"
#include "runtime/docker/swarm_driver.hpp"

namespace berth::swarm {

namespace {

using json = nlohmann::json;

constexpr auto kRemoveWait = std::chrono::seconds(15);  // a deleted service's containers to go
constexpr auto kRemovePoll = std::chrono::milliseconds(100);

std::string filter(const json& f) { return "filters=" + url_encode(f.dump()); }

// Whether the registry already holds `remote` as the local image `local_inspect` (the engine
// asks the registry: GET /distribution/{name}/json). Any doubt: no (a push of layers the
// registry has is cheap).
bool in_registry(const docker_engine& engine, const std::string& remote, const json& local_inspect) {
  engine_reply r;
  if (!engine.call("GET", "/distribution/" + remote + "/json", nullptr, &r, std::chrono::seconds(10)) || !r.ok())
    return false;
  auto digest = r.body.value("Descriptor", json::object()).value("digest", std::string());
  if (digest.empty()) return false;
  auto repo = remote.substr(0, remote.rfind(':'));
  for (auto& d : local_inspect.value("RepoDigests", json::array()))
    if (d.is_string() && d.get<std::string>() == repo + "@" + digest) return true;
  return false;
}

}  // namespace

// X-Registry-Auth (base64url of {username, password, serveraddress}), the header the push
// sends too: given with the service, it lets every node pull the image.
std::string auth_header(const std::string& auth, const std::string& registry) {
  auto colon = auth.find(':');
  std::string raw = json{{"username", auth.substr(0, colon)},
                         {"password", colon == std::string::npos ? "" : auth.substr(colon + 1)},
                         {"serveraddress", registry}}
                        .dump();
  std::string b64(4 * ((raw.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()), reinterpret_cast<const unsigned char*>(raw.data()),
                          static_cast<int>(raw.size()));
  b64.resize(static_cast<size_t>(n));
  for (auto& c : b64) c = c == '+' ? '-' : c == '/' ? '_' : c;
  return "X-Registry-Auth: " + b64;
}


// POST /images/create?fromImage=<registry image>: the release image from the registry.
status swarm_runtime::pull(const instance_spec& spec) const {
  auto registry = registry_of(spec);
  auto& l = spec.labels;
  std::vector<std::string> headers;
  if (!spec.container.registry_auth.empty()) headers.push_back(auth_header(spec.container.registry_auth, registry));
  std::string failure;
  long http = 0;
  auto s = engine_->stream_json(
      "POST",
      "/images/create?fromImage=" + url_encode(registry + "/berth/" + l.project) + "&tag=" + url_encode(l.release), {},
      "", headers,
      [&](const json& m) {
        if (m.contains("error") && m["error"].is_string()) failure = m["error"].get<std::string>();
        return true;
      },
      {}, std::chrono::minutes(10), &http);
  if (!s) return s;
  if (http == 404 || failure.find("not found") != std::string::npos) return status::ok();  // the caller says so
  if (http < 200 || http >= 300 || !failure.empty())
    return status::io_error("pulling the image of release " + l.release + ": " +
                            (failure.empty() ? "the engine answered " + std::to_string(http) : failure));
  return status::ok();
}

status swarm_runtime::prepare(const instance_spec& spec, const std::function<void(const std::string&)>& output,
                              const std::function<bool()>& cancelled, artifact* out) try {
  auto& l = spec.labels;
  auto registry = registry_of(spec);
  if (registry.empty()) return status::invalid_argument("the swarm runtime needs a registry");
  if (l.project.empty() || l.release.empty())
    return status::invalid_argument("the swarm runtime prepares production releases: project and release are needed");
  auto local = release_image(l.project, l.release);
  bool exists = false;
  json inspect;
  if (auto s = image_exists(*engine_, local, &exists, &inspect); !s) return s;
  if (!exists) {
    image_build b;
    b.folder = spec.from.id;
    if (b.folder.empty() || !std::filesystem::is_directory(b.folder))
      return status::not_found("release folder " + spec.from.id + " is not there");
    if (!std::filesystem::exists(b.folder / "Dockerfile"))
      if (auto s = generated_dockerfile(spec.container.base, spec.command, &b.dockerfile); !s) return s;
    b.tag = local;
    b.labels = release_image_labels(l.project, l.release, "production", options_.data_dir);
    b.data_dir = options_.data_dir;
    if (auto s = build_image(*engine_, b, output, cancelled); !s) return s;
    if (auto s = image_exists(*engine_, local, &exists, &inspect); !s) return s;
  } else if (output) {
    output("image " + local + " is there already: not rebuilt");
  }
  auto remote = registry_image(registry, l.project, l.release);
  // A rollback's image is in the registry already: no push.
  if (in_registry(*engine_, remote, inspect)) {
    if (output) output(remote + " is in the registry already: not pushed");
  } else {
    std::string pushed;
    if (auto s = push_image(*engine_, local, registry, spec.container.registry_auth, output, cancelled, &pushed); !s)
      return s;
  }
  if (out) out->id = remote;
  return status::ok();
} catch (const nlohmann::json::exception& e) {
  return status::io_error(std::string("an unexpected answer from the Docker engine: ") + e.what());
}

status swarm_runtime::remove_artifact(const instance_labels& labels) try {
  if (labels.project.empty() || labels.release.empty()) return status::ok();
  // The local copies (the registry keeps its own: a registry's deletes are its operator's).
  auto local = release_image(labels.project, labels.release);
  json inspect;
  bool exists = false;
  if (auto s = image_exists(*engine_, local, &exists, &inspect); !s) return s;
  if (!exists) return prune_project_images(*engine_, labels.project, options_.data_dir);
  for (auto& tag : inspect.value("RepoTags", json::array()))
    if (tag.is_string())
      if (auto s = remove_image(*engine_, tag.get<std::string>()); !s) return s;
  return prune_project_images(*engine_, labels.project, options_.data_dir);  // as the docker driver does
} catch (const nlohmann::json::exception& e) {
  return status::io_error(std::string("an unexpected answer from the Docker engine: ") + e.what());
}

status swarm_runtime::remove_project(const std::string& project) try {
  json service;
  if (auto s = read(service_name(project), &service, nullptr); !s) return s;
  if (!service.is_null())
    if (auto s = remove_service(service.value("ID", std::string())); !s) return s;
  // Its task containers go with the service (which a stop may have removed a moment ago): wait
  // for this node's, so that its images and volumes can go too.
  json mine = {"berth.project=" + project, "berth.data_dir=" + options_.data_dir};
  auto tasks = "/containers/json?all=1&" + filter({{"label", {mine[0], mine[1], "berth.runtime=swarm"}}});
  auto until = std::chrono::steady_clock::now() + kRemoveWait;
  for (engine_reply r; std::chrono::steady_clock::now() < until; std::this_thread::sleep_for(kRemovePoll))
    if (!engine_->call("GET", tasks, nullptr, &r) || !r.ok() || !r.body.is_array() || r.body.empty()) break;
  // The images pushed for swarm (those with a registry tag; the docker runtime's own are the
  // docker driver's to remove), every tag of them.
  std::vector<std::string> ids;
  if (auto s = project_images(*engine_, project, options_.data_dir, &ids); !s) return s;
  for (auto& id : ids) {
    bool exists = false;
    json inspect;
    if (auto s = image_exists(*engine_, id, &exists, &inspect); !s) return s;
    bool pushed = false;
    for (auto& tag : inspect.value("RepoTags", json::array()))
      pushed = pushed || (tag.is_string() && tag.get<std::string>().find("/berth/" + project + ":") != std::string::npos);
    if (pushed)
      if (auto s = remove_image(*engine_, id, /*force=*/true); !s) return s;
  }
  // The volumes Swarm made for its tasks (labelled by the spec's mounts); the engine may still
  // count a container that is going as their user (409) for a moment.
  engine_reply v;
  json swarm_volumes = {mine[0], mine[1], "berth.runtime=swarm"};
  if (auto s = engine_->call("GET", "/volumes?" + filter({{"label", swarm_volumes}}), nullptr, &v); !s) return s;
  if (!v.ok() || !v.body.value("Volumes", json()).is_array()) return status::ok();
  for (auto& vol : v.body["Volumes"]) {
    auto name = vol.is_object() ? vol.value("Name", std::string()) : "";
    engine_reply d;
    while (!name.empty() && engine_->call("DELETE", "/volumes/" + name, nullptr, &d) && d.http == 409 &&
           std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(kRemovePoll);
    if (!d.ok() && d.http != 404) return status::io_error("volume " + name + ": " + d.error());
  }
  return status::ok();
} catch (const nlohmann::json::exception& e) {
  return status::io_error(std::string("an unexpected answer from the Docker engine: ") + e.what());
}

}  // namespace berth::swarm
