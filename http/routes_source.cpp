// The workspace source routes (server.hpp: add_source_routes): a project's live tree
// (preview/src) listed and read, replaced by an uploaded tar.gz, changed one file at a time.
// Bodies stream to a staging folder under <project>/.uploads (source_io.hpp), never into
// memory; applying what was staged is project:<name>'s (messages/source.hpp), which serialises
// it with the tree's other changes and records it as one source_updated event.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include <fmt/format.h>
#include <httplib.h>

#include "http/render.hpp"
#include "http/reply.hpp"
#include "http/route_util.hpp"
#include "http/server.hpp"
#include "http/source_io.hpp"
#include "messages/atoms.hpp"
#include "runtime/files/fs_util.hpp"
#include "runtime/files/layout.hpp"
#include "runtime/workspace/tree_change.hpp"
#include "runtime/workspace/tree_hash.hpp"
#include "runtime/workspace/upload_extract.hpp"

namespace berth::http {

namespace {

namespace fs = std::filesystem;

// Applying a big tree takes seconds (each file renamed into place, then the tree hashed).
constexpr auto apply_timeout = std::chrono::seconds(120);

// A runtime status as the error answer its code stands for.
void reply_status(httplib::Response& res, const status& s) {
  switch (s.which()) {
    case status::code::invalid_argument: return reply_error(res, errc::invalid_request, s.message());
    case status::code::not_found: return reply_error(res, errc::not_found, s.message());
    case status::code::no_space: return reply_error(res, errc::insufficient_storage, s.message());
    default: return reply_error(res, errc::storage_error, s.message());
  }
}

// What extract_upload refused, as the API names it.
void reply_extract_failure(httplib::Response& res, const status& s) {
  if (is_limit_refusal(s)) return reply_error(res, 413, "payload_too_large", s.message());
  if (s.which() == status::code::invalid_argument) return reply_error(res, 400, "unsafe_archive", s.message());
  if (s.which() == status::code::corruption)
    return reply_error(res, 400, "bad_archive", "the body is not a readable .tar.gz: " + s.message());
  reply_status(res, s);
}

// The project (a dormant one is answered from the index, without waking it), or false after an
// answer: not_found, or unavailable while it is broken or restarting.
bool find_project(const context& ctx, const std::string& name, httplib::Response& res, project_view& out) {
  auto v = ask<project_view>(ctx.sys, projects(ctx), ctx.timeout(), get_atom_v, name);
  if (!v) {
    reply_error(res, v.error());
    return false;
  }
  if (!v->broken_reason.empty()) {
    reply_error(res, errc::unavailable, "project '" + name + "' is broken: " + v->broken_reason);
    return false;
  }
  out = std::move(*v);
  return true;
}

// Uploads and edits are for workspace projects: a path or git project's tree is a copy of a
// source that lives elsewhere (409). False after an answer.
bool find_workspace(const context& ctx, const std::string& name, httplib::Response& res) {
  project_view v;
  if (!find_project(ctx, name, res, v)) return false;
  if (v.spec.source_workspace) return true;
  reply_error(res, errc::conflict,
              fmt::format("project '{}' takes its source from {}: its source lives elsewhere, so it is not uploaded "
                          "or edited here (only a project with \"source\": {{\"workspace\": {{}}}} is)",
                          name, v.spec.source_git.empty() ? "a path (source.path)" : "git (source.git)"));
  return false;
}

// The client's path of one file of the tree (req.matches[2]), or false after a 400.
bool tree_path(const httplib::Request& req, httplib::Response& res, std::string& rel) {
  rel = req.matches[2];
  if (auto s = check_tree_path(rel); !s) {
    reply_error(res, errc::invalid_request, "path: " + s.message());
    return false;
  }
  return true;
}

// A staging folder under the project's .uploads, removed when this goes out of scope unless
// project:<name> may still need it (see sent()).
class staging_area {
 public:
  ~staging_area() {
    if (!path_.empty()) fsutil::force_remove(path_);
  }
  status make(const project_paths& paths) { return new_staging(paths.root / ".uploads", &path_); }
  const fs::path& path() const { return path_; }
  // The change was sent to project:<name>. Without an answer it may still be applying it (it
  // removes the folder when done; finish_pending() at the next start otherwise): keep it. With
  // an answer the apply has removed the folder whatever its outcome, or the change never
  // reached project:<name> (ours to remove).
  void sent(const caf::error& failure) {
    if (failure == caf::sec::request_timeout) path_.clear();
  }

 private:
  fs::path path_;
};

// Sends a staged change to project:<name> and answers {"source": ...}.
void apply_change(const context& ctx, const std::string& name, source_change change, staging_area* staging,
                  httplib::Response& res) {
  auto timeout = std::max<std::chrono::milliseconds>(ctx.timeout(), apply_timeout);
  auto v = ask<source_view>(ctx.sys, projects(ctx), timeout, source_atom_v, name, std::move(change));
  if (staging != nullptr) staging->sent(v ? caf::error{} : v.error());
  if (!v) return reply_error(res, v.error());
  reply_json(res, 200, {{"source", to_json(*v)}});
}

// Checks that may refuse an upload before a byte of its body is read. False after an answer.
bool may_receive(const httplib::Request& req, httplib::Response& res) {
  if (req.is_multipart_form_data()) {
    reply_error(res, 415, "unsupported_media_type",
                "send the upload as the raw body (a .tar.gz, or the file's bytes), not as multipart/form-data");
    return false;
  }
  return true;
}

uint64_t declared_length(const httplib::Request& req) {
  // admission.cpp has checked it is one decimal number within --max-upload-bytes.
  return std::stoull(req.get_header_value("Content-Length"));
}

// ?mode=0755 (octal, at most 0777; default 0644), or false after a 400.
bool query_mode(const httplib::Request& req, httplib::Response& res, uint32_t& mode) {
  mode = 0644;
  if (!req.has_param("mode")) return true;
  auto text = req.get_param_value("mode");
  if (!text.empty() && text.size() <= 4 && text.find_first_not_of("01234567") == std::string::npos) {
    mode = static_cast<uint32_t>(std::stoul(text, nullptr, 8));
    if (mode <= 0777) return true;
  }
  reply_error(res, errc::invalid_request, "query parameter 'mode' must be octal permission bits such as 0644 or 0755");
  return false;
}

}  // namespace

void add_source_routes(httplib::Server& svr, const context& ctx) {
  constexpr const char* tree = R"(/api/projects/([^/]+)/source)";
  constexpr const char* one_file = R"(/api/projects/([^/]+)/source/(.+))";

  // The live tree, hashed now (files unchanged since the last hash are not read again).
  svr.Get(tree, [&ctx](const httplib::Request& req, httplib::Response& res) {
    std::string name;
    project_view v;
    if (!path_name(req, res, name) || !find_project(ctx, name, res, v)) return;
    auto live = paths_for(ctx.cfg.data_dir, name).preview_src;
    tree_listing listing;
    if (auto s = hash_tree(live, &listing, hash_cache_for(live).get()); !s) {
      if (s.which() == status::code::not_found)
        return reply_error(res, errc::not_found, "project '" + name + "' has no source tree yet");
      return reply_status(res, s);
    }
    reply_json(res, 200, to_json(listing, &v.source));
  });

  // The whole tree replaced by an uploaded .tar.gz, streamed to disk, extracted, then applied.
  svr.Put(tree, [&ctx](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& body) {
    std::string name;
    if (!path_name(req, res, name) || !may_receive(req, res) || !find_workspace(ctx, name, res)) return;
    long_wait waiting;  // a big body arrives and unpacks for a while: the worker serves others
    if (!may_wait_long(waiting, res)) return;
    auto paths = paths_for(ctx.cfg.data_dir, name);
    staging_area staging;
    if (auto s = staging.make(paths); !s) return reply_status(res, s);
    auto archive = staging.path() / "upload.tar.gz";
    if (auto s = receive_body(body, declared_length(req), archive); !s) return reply_status(res, s);
    upload_limits limits{ctx.cfg.max_upload_bytes, ctx.cfg.max_upload_files, ctx.cfg.max_upload_unpacked_bytes};
    upload_summary summary;
    auto extracted = extract_upload(archive, staging.path() / "tree", limits, &summary);
    std::error_code ignored;
    fs::remove(archive, ignored);
    if (!extracted) return reply_extract_failure(res, extracted);
    apply_change(ctx, name, source_change{"upload", "", staging.path().string(), 0}, &staging, res);
  });

  // One file's bytes, with their SHA-256 in X-Berth-Sha256.
  svr.Get(one_file, [&ctx](const httplib::Request& req, httplib::Response& res) {
    std::string name, rel;
    project_view v;
    if (!path_name(req, res, name) || !tree_path(req, res, rel) || !find_project(ctx, name, res, v)) return;
    auto live = paths_for(ctx.cfg.data_dir, name).preview_src;
    int fd = -1;
    uint64_t size = 0;
    if (auto s = open_tree_file(live, rel, &fd, &size); !s) return reply_status(res, s);
    // The hash and the bytes come from the same open file: an editor or berth replacing the
    // file (a rename) does not change what this answer holds.
    std::string sha;
    struct stat st {};
    bool cached = ::fstat(fd, &st) == 0 && static_cast<uint64_t>(st.st_size) == size &&
                  hash_cache_for(live)->find(rel, file_identity::of(st), &sha);
    if (!cached)
      if (auto s = sha256_of(fd, size, &sha); !s) {
        ::close(fd);
        return reply_status(res, s);
      }
    res.set_header("X-Berth-Sha256", sha);
    send_file(res, fd, size);
  });

  // One file written (created with its folders, or replaced) from the raw body.
  svr.Put(one_file, [&ctx](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& body) {
    std::string name, rel;
    uint32_t mode = 0644;
    if (!path_name(req, res, name) || !tree_path(req, res, rel) || !query_mode(req, res, mode) ||
        !may_receive(req, res) || !find_workspace(ctx, name, res))
      return;
    long_wait waiting;
    if (!may_wait_long(waiting, res)) return;
    staging_area staging;
    if (auto s = staging.make(paths_for(ctx.cfg.data_dir, name)); !s) return reply_status(res, s);
    if (auto s = receive_body(body, declared_length(req), staging.path() / "file"); !s) return reply_status(res, s);
    apply_change(ctx, name, source_change{"write", rel, staging.path().string(), mode}, &staging, res);
  });

  // One file removed (404 when there is none).
  svr.Delete(one_file, [&ctx](const httplib::Request& req, httplib::Response& res) {
    std::string name, rel;
    if (!path_name(req, res, name) || !tree_path(req, res, rel) || !no_body(req, res) ||
        !find_workspace(ctx, name, res))
      return;
    apply_change(ctx, name, source_change{"delete", rel, "", 0}, nullptr, res);
  });
}

}  // namespace berth::http
