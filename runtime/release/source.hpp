// Snapshotting a project's source into a folder it owns (preview/src or a build dir): a copy
// of a local directory, or a git clone. No actor code; these calls block (git is bounded by a
// timeout), so an actor runs them on a blocking worker.
#pragma once
#include <chrono>
#include <filesystem>
#include <string>

#include "runtime/release/snapshot_record.hpp"
#include "runtime/status.hpp"

namespace berth {

// Exactly one of source_path / git_url must be non-empty (invalid_argument otherwise).
//
// Local path: the tree is copied into `dest`, skipping every entry named `.git`; file and
// directory modes are kept (& 0777: setuid/setgid/sticky dropped); fifos, sockets and devices
// are skipped. Symlinks are re-created as symlinks and never followed, so a link to /etc/passwd
// or to a folder outside the source never makes the copy read (or write) outside: it arrives as
// a link with the same target text, except that an absolute target inside the source tree is
// rewritten as a relative one (the snapshot never points back into the live source). Every
// entry is opened relative to its already-open parent with O_NOFOLLOW, so a directory replaced
// by a symlink while the copy runs is not followed either: the snapshot fails (io_error naming
// it) and dest is left as it was.
// A missing source path is not_found naming it; a dest inside the source (or the source inside
// dest) is invalid_argument.
//
// Git: `git clone --depth 1 --branch <ref> -- <url> <tmp>` run with fork/execve (no shell),
// stdin /dev/null, a new session, GIT_TERMINAL_PROMPT=0, LC_ALL=C, protocol.ext.allow=never.
// If that fails (e.g. the ref is a commit, which --branch can't take), a full
// `git clone --no-checkout` + `git -C <tmp> checkout --detach <ref> --`. An empty ref clones
// the default branch. A ref no clone can check out is not_found; other git failures are
// io_error with git's last output lines (credentials in the URL are masked). Each git run is
// killed (its whole process group) after `git_timeout`. The clone's `.git` is removed before it
// is installed: builds, previews and releases never get the repository's history or config.
// `git_credential` (a secret's value: "user:password", or a token used as the password of
// "x-access-token") is given to git as an Authorization header for the URL's own host through
// GIT_CONFIG_COUNT/KEY/VALUE in its environment: never in argv, a file, or `.git/config`.
//
// `record` (optional, local paths only; a git clone leaves it empty) receives, for each copied
// file, its source's identity and the copy's (snapshot_record.hpp): packaging then knows which
// build-dir files are untouched copies of source files it has hashed before.
//
// Either way the snapshot is made next to dest (`<dest>.tmp-<random>`) and only replaces dest
// once complete; on failure dest is left as it was and the temp folder is removed.
// A git URL fit for logs and answers: credentials before the host are masked
// (https://user:token@host/x -> https://***@host/x); anything else is returned as it is.
std::string mask_url_credentials(const std::string& url);

inline constexpr std::chrono::seconds default_git_timeout{120};

status snapshot_source(const std::string& source_path, const std::string& git_url,
                       const std::string& git_ref, const std::filesystem::path& dest,
                       std::chrono::seconds git_timeout = default_git_timeout,
                       const std::string& git_credential = "", snapshot_record* record = nullptr);

}  // namespace berth
