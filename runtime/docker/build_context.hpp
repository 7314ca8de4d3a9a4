// A Docker build context: a tar of a release folder written with libarchive, handed to the
// engine's POST /build.
#pragma once
#include <filesystem>
#include <string>

#include "runtime/status.hpp"

namespace berth {

// Writes a pax tar of `folder` to `out`: regular files, folders and symlinks (stored as
// symlinks, never followed), modes kept (plus read for all: the image runs as a non-root user
// and the files are owned by 0:0), anything else skipped. `dockerfile`, when not "" and the
// folder has no `Dockerfile`, is added as one. Errors: not_found (no such folder), io_error.
status write_build_context(const std::filesystem::path& folder, const std::string& dockerfile,
                           const std::filesystem::path& out);

// A tar holding one empty folder `name` (mode 0755, owner uid:gid), in memory: what
// PUT /containers/{id}/archive extracts to give a folder to the container's user.
std::string folder_tar(const std::string& name, unsigned uid = 0, unsigned gid = 0);

// A unique temp file name under <data_dir>/tmp (the folder is made); the caller removes it.
std::filesystem::path build_context_path(const std::string& data_dir);

}  // namespace berth
