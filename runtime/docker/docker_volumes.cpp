// The docker driver: a project's named volumes, kept across releases.
#include <cstdio>

#include "runtime/docker/build_context.hpp"
#include "runtime/docker/container_spec.hpp"
#include "runtime/docker/docker_driver.hpp"

namespace berth::docker {

namespace {
constexpr auto kCallTimeout = std::chrono::seconds(30);
}  // namespace

status docker_driver::make_volumes(const instance_spec& spec, std::vector<std::string>* fresh) {
  for (auto& [name, target] : spec.container.volumes) {
    auto vname = volume_name(spec.labels, name);
    engine_reply r;
    if (auto s = engine_->call("GET", "/volumes/" + vname, nullptr, &r, kCallTimeout); !s) return s;
    if (r.ok()) continue;  // kept across releases as it is
    nlohmann::json body = {{"Name", vname},
                           {"Labels", {{"berth.project", spec.labels.project}, {"berth.data_dir", options_.data_dir}}}};
    if (auto s = engine_->call("POST", "/volumes/create", body, &r, kCallTimeout); !s) return s;
    if (!r.ok()) return status::io_error("volume " + name + ": " + r.error());
    fresh->push_back(target);
  }
  return status::ok();
}

status docker_driver::own_volumes(const std::string& id, const std::string& user,
                                  const std::vector<std::string>& fresh) {
  // The folder itself, extracted over the mount point as owned by the user: no tool of the
  // image is needed. Numeric ids go in the tar; a name is resolved by the engine in the image's
  // /etc/passwd (copyUIDGID, which in 1.41 looks up names only).
  unsigned uid = 0, gid = 0;
  bool numeric = std::sscanf(user.c_str(), "%u:%u", &uid, &gid) >= 1 &&
                 user.find_first_not_of("0123456789:") == std::string::npos;
  if (numeric && uid == 0) return status::ok();
  for (auto& target : fresh) {
    std::filesystem::path t(target);
    auto tar = folder_tar(t.filename().string(), uid, gid);
    if (tar.empty()) return status::io_error("cannot make the tar that owns volume " + target);
    engine_reply r;
    if (auto s = engine_->call_raw("PUT",
                                   "/containers/" + id + "/archive?" + (numeric ? "" : "copyUIDGID=1&") + "path=" +
                                       url_encode(t.parent_path().string()),
                                   tar, "application/x-tar", &r, kCallTimeout);
        !s)
      return s;
    if (!r.ok()) return status::io_error("giving volume " + target + " to the app's user: " + r.error());
  }
  return status::ok();
}

}  // namespace berth::docker
