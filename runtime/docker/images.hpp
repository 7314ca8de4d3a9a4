// Release images on a Docker engine (runtime/docker/engine.hpp): their names and labels, and
// the image verbs the docker and swarm drivers share. Blocking and thread-safe as the engine.
// Errors common to every verb: io_error when the engine cannot be reached or erred (transient).
#pragma once
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "runtime/docker/engine.hpp"

namespace berth {

using line_sink = std::function<void(const std::string&)>;

// berth/<project>:<release>: the tag of a release's image.
std::string release_image(const std::string& project, const std::string& release);
// berth.project, berth.release, berth.env, berth.data_dir: the labels of a release's image.
std::map<std::string, std::string> release_image_labels(const std::string& project, const std::string& release,
                                                        const std::string& env, const std::string& data_dir);

// The Dockerfile of a release that has none: FROM base, COPY . /app, WORKDIR /app, CMD command
// (JSON exec form). invalid_argument when base or command is empty (the manifest's fault).
status generated_dockerfile(const std::string& base, const std::vector<std::string>& command, std::string* out);

// Whether the image `ref` (name:tag or id) is there; *inspect (optional) gets its
// GET /images/{ref}/json.
status image_exists(const docker_engine& engine, const std::string& ref, bool* exists,
                    nlohmann::json* inspect = nullptr);

struct image_build {
  std::filesystem::path folder;           // the build context: the release folder
  std::string dockerfile;                 // used when the folder has no Dockerfile ("": it must have one)
  std::string tag;                        // release_image(...)
  std::map<std::string, std::string> labels;
  std::string data_dir;                   // the context tar is written under <data_dir>/tmp, then removed
};
// Builds b.tag from b.folder (POST /build, rm and forcerm: no intermediate containers left).
// Each line of the build's output goes to `output` (whole lines, on the caller's thread).
// `cancelled` true ends it (io_error). Errors: not_found (no folder), invalid_argument (the
// build failed: the engine's words; also given to `output`), io_error (also when the engine
// itself failed a step: its network or disk).
status build_image(const docker_engine& engine, const image_build& b, const line_sink& output,
                   const std::function<bool()>& cancelled);

// Removes the image `ref` (untags it; its layers go when nothing else uses them). ok when it
// is not there. `force`: also when a container uses it (then it is only untagged: a dangling
// image until that container is gone). `in_use` (optional) is set when the engine refused
// because a container uses it (409, not forced): then ok too, and the image stays.
status remove_image(const docker_engine& engine, const std::string& ref, bool force = false, bool* in_use = nullptr);

// Tags `local` (a release image) as <registry>/<local> and pushes it (POST /images/{}/push,
// X-Registry-Auth from "user:password", "" = none). Progress lines go to `output`. *pushed:
// the registry's name of the image. Errors: invalid_argument (the registry refused: its
// words), io_error.
status push_image(const docker_engine& engine, const std::string& local, const std::string& registry,
                  const std::string& auth, const line_sink& output, const std::function<bool()>& cancelled,
                  std::string* pushed);

// Removes the dangling images labelled berth.project=project and berth.data_dir=data_dir
// (POST /images/prune), and the build cache the engine keeps for them.
status prune_project_images(const docker_engine& engine, const std::string& project, const std::string& data_dir);

// Every image labelled with the project and data dir (GET /images/json): their ids.
status project_images(const docker_engine& engine, const std::string& project, const std::string& data_dir,
                      std::vector<std::string>* ids);

// filters={"label": ["k=v", ...]} (url-encoded) for the engine's list and prune verbs.
std::string label_filter(const std::map<std::string, std::string>& labels, const std::string& extra_key = "",
                         const std::string& extra_value = "");

}  // namespace berth
