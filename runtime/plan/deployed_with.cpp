#include "runtime/plan/deployed_with.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "runtime/files/fs_util.hpp"
#include "runtime/files/private_dir.hpp"
#include "runtime/pipeline/deploy.hpp"
#include "runtime/release/sha256_digest.hpp"

namespace berth {

namespace {

using json = nlohmann::json;
constexpr size_t kKeyBytes = 32;

std::string key_path(const project_paths& paths) {
  return (paths.secrets_file.parent_path() / ".secret-digest-key").string();
}

status read_key(const std::string& path, std::string* key) {
  std::string content;
  auto s = read_private_file(path, "the secret digest key", kKeyBytes + 1,
                             "Run: chmod 600 " + path, &content);
  if (!s) return s;
  if (content.size() != kKeyBytes) return status::invalid_argument(path + " is not a 32-byte key");
  *key = std::move(content);
  return status::ok();
}

// A temp file with the new key, linked to `path` only if nothing is there: whoever comes
// second reads the first one's key.
status make_key(const std::string& path, std::string* key) {
  unsigned char bytes[kKeyBytes];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return status::io_error("no random bytes for the secret digest key");
  auto tmp = path + ".tmp-" + fsutil::random_suffix();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return status::io_error("create " + tmp + ": " + fsutil::errstr(errno));
  bool written = fsutil::write_all(fd, reinterpret_cast<const char*>(bytes), sizeof bytes) && ::fsync(fd) == 0;
  int err = errno;
  ::close(fd);
  if (!written) {
    ::unlink(tmp.c_str());
    return status::io_error("write " + tmp + ": " + fsutil::errstr(err));
  }
  int linked = ::link(tmp.c_str(), path.c_str());
  err = errno;
  ::unlink(tmp.c_str());
  if (linked != 0 && err != EEXIST) return status::io_error("create " + path + ": " + fsutil::errstr(err));
  if (linked != 0) return read_key(path, key);
  key->assign(reinterpret_cast<const char*>(bytes), sizeof bytes);
  return status::ok();
}

}  // namespace

status secret_digest_key(const project_paths& paths, bool create, std::string* key) {
  auto path = key_path(paths);
  auto s = read_key(path, key);
  if (s || s.which() != status::code::not_found || !create) return s;
  return make_key(path, key);
}

std::map<std::string, std::string> secret_digests(const std::string& key,
                                                  const std::map<std::string, std::string>& secrets) {
  std::map<std::string, std::string> out;
  if (key.empty()) return out;
  for (auto& [name, value] : secrets) {
    std::string message = name;
    message.push_back('\0');
    message += value;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
              reinterpret_cast<const unsigned char*>(message.data()), message.size(), md, &n))
      continue;  // no digest: that secret compares by name only
    out[name] = release_detail::sha256_digest::to_hex(std::string(reinterpret_cast<const char*>(md), n));
  }
  return out;
}

json deployed_with(const deploy_inputs& in) {
  json record{{"manifest", to_json(in.spec, false)}};
  std::string key;
  if (!secret_digest_key(in.paths, /*create=*/true, &key)) return record;
  // The values this job hands its release: the secrets win over env keys of the same name.
  std::map<std::string, std::string> values;
  for (auto& [name, unused] : in.spec.secrets)
    if (auto it = in.env.find(name); it != in.env.end()) values[name] = it->second;
  record["secrets"] = secret_digests(key, values);
  return record;
}

recorded_manifest read_deployed_with(const json& resources) {
  recorded_manifest r;
  if (!resources.is_object()) return r;
  auto it = resources.find("deployed_with");
  if (it == resources.end() || !it->is_object() || !it->contains("manifest") || !(*it)["manifest"].is_object())
    return r;
  r.known = true;
  r.manifest = (*it)["manifest"];
  if (auto s = it->find("secrets"); s != it->end() && s->is_object()) {
    r.has_digests = true;
    for (auto& [name, digest] : s->items())
      if (digest.is_string()) r.digests[name] = digest.get<std::string>();
  }
  return r;
}

}  // namespace berth
