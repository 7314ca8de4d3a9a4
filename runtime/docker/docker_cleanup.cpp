// The docker driver: what goes with a pruned release and with a deleted project.
#include "runtime/docker/container_spec.hpp"
#include "runtime/docker/docker_driver.hpp"
#include "runtime/docker/images.hpp"

namespace berth::docker {

status docker_driver::remove_artifact(const instance_labels& labels) try {
  if (labels.project.empty()) return status::ok();
  if (!labels.release.empty()) {
    // Forced: a container still using it keeps it as an untagged (dangling) image, which a
    // later prune takes once that container is gone.
    if (auto s = remove_image(*engine_, release_image(labels.project, labels.release), true); !s) return s;
  }
  return prune_project_images(*engine_, labels.project, options_.data_dir);
} catch (const nlohmann::json::exception& e) {
  return status::io_error(std::string("an unexpected answer from the Docker engine: ") + e.what());
}

// The release images by their label (an image built by a deploy berth did not live to record
// has one too); images that lost their tag are dangling and go with a prune.
std::vector<std::string> docker_driver::artifacts(const std::string& project) const try {
  engine_reply r;
  auto filter = label_filter({{"berth.project", project}, {"berth.data_dir", options_.data_dir}});
  if (!engine_->call("GET", "/images/json?" + filter, nullptr, &r) || !r.ok() || !r.body.is_array()) return {};
  std::vector<std::string> releases;
  for (auto& image : r.body) {
    auto& labels = image["Labels"];
    if (!labels.is_object() || !labels.contains("berth.release") || !labels["berth.release"].is_string()) continue;
    if (!image["RepoTags"].is_array() || image["RepoTags"].empty()) continue;  // dangling
    releases.push_back(labels["berth.release"].get<std::string>());
  }
  return releases;
} catch (const nlohmann::json::exception&) {
  return {};
}

status docker_driver::remove_project(const std::string& project) try {
  if (project.empty()) return status::ok();
  std::map<std::string, std::string> mine{{"berth.project", project}, {"berth.data_dir", options_.data_dir}};
  engine_reply r;
  auto containers = mine;
  containers["berth.runtime"] = "docker";
  if (auto s = engine_->call("GET", "/containers/json?all=1&" + label_filter(containers), nullptr, &r); !s) return s;
  if (!r.ok()) return status::io_error(r.error());
  if (r.body.is_array())
    for (auto& c : r.body)
      if (auto s = remove_container(c.value("Id", "")); !s) return s;

  std::vector<std::string> images;
  if (auto s = project_images(*engine_, project, options_.data_dir, &images); !s) return s;
  for (auto& id : images)
    if (auto s = remove_image(*engine_, id, true); !s) return s;

  if (auto s = engine_->call("GET", "/volumes?" + label_filter(mine), nullptr, &r); !s) return s;
  if (!r.ok()) return status::io_error(r.error());
  if (r.body.is_object() && r.body["Volumes"].is_array())
    for (auto& v : r.body["Volumes"]) {
      engine_reply d;
      auto name = v.value("Name", "");
      if (auto s = engine_->call("DELETE", "/volumes/" + name, nullptr, &d); !s) return s;
      if (!d.ok() && d.http != 404) return status::io_error("volume " + name + ": " + d.error());
    }
  return prune_project_images(*engine_, project, options_.data_dir);
} catch (const nlohmann::json::exception& e) {
  return status::io_error(std::string("an unexpected answer from the Docker engine: ") + e.what());
}

}  // namespace berth::docker
