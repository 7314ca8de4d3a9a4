#include "runtime/docker/engine.hpp"

#include <curl/curl.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace berth {

namespace {

constexpr const char* kApiBase = "http://localhost/v1.41";
constexpr long kConnectTimeoutMs = 2000;
constexpr int kPollMs = 100;  // how often a transfer looks at `cancelled`

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct easy_handle {
  CURL* h = nullptr;
  curl_slist* headers = nullptr;
  FILE* body = nullptr;
  ~easy_handle() {
    if (headers) curl_slist_free_all(headers);
    if (h) curl_easy_cleanup(h);
    if (body) std::fclose(body);
  }
};

// Sets up a request to the engine's socket; the body, if any, is the caller's to add.
void prepare(easy_handle& e, const std::string& socket, const std::string& method, const std::string& path,
             std::chrono::milliseconds timeout) {
  e.h = curl_easy_init();
  curl_easy_setopt(e.h, CURLOPT_UNIX_SOCKET_PATH, socket.c_str());
  curl_easy_setopt(e.h, CURLOPT_URL, (std::string(kApiBase) + path).c_str());
  curl_easy_setopt(e.h, CURLOPT_NOSIGNAL, 1L);  // threads: no SIGALRM for timeouts
  long connect = kConnectTimeoutMs;
  if (timeout.count() > 0) {
    connect = std::min<long>(connect, static_cast<long>(timeout.count()));
    curl_easy_setopt(e.h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  }
  curl_easy_setopt(e.h, CURLOPT_CONNECTTIMEOUT_MS, connect);
  if (method == "POST") curl_easy_setopt(e.h, CURLOPT_POST, 1L);
  else if (method != "GET") curl_easy_setopt(e.h, CURLOPT_CUSTOMREQUEST, method.c_str());
}

size_t read_file_cb(char* buf, size_t size, size_t n, void* user) {
  return std::fread(buf, size, n, static_cast<FILE*>(user));
}

// Runs the transfer through a multi handle so that `cancelled` is looked at every kPollMs
// whatever the engine is doing (the progress callback alone can be a second apart when idle).
// *stopped: the transfer was ended by `cancelled` or by a write callback returning 0 on purpose.
status perform(easy_handle& e, const std::string& socket, const std::function<bool()>& cancelled,
               const bool* stopped_by_writer, long* http) {
  CURLM* m = curl_multi_init();
  curl_multi_add_handle(m, e.h);
  CURLcode result = CURLE_OK;
  bool cancelled_now = false;
  for (;;) {
    int running = 0;
    curl_multi_perform(m, &running);
    if (!running) {
      int left = 0;
      while (CURLMsg* msg = curl_multi_info_read(m, &left))
        if (msg->msg == CURLMSG_DONE) result = msg->data.result;
      break;
    }
    if (cancelled && cancelled()) {
      cancelled_now = true;
      break;
    }
    curl_multi_poll(m, nullptr, 0, kPollMs, nullptr);
  }
  long code = 0;
  curl_easy_getinfo(e.h, CURLINFO_RESPONSE_CODE, &code);
  curl_multi_remove_handle(m, e.h);
  curl_multi_cleanup(m);
  if (http) *http = code;
  if (cancelled_now) return status::ok();
  if (result == CURLE_WRITE_ERROR && stopped_by_writer && *stopped_by_writer) return status::ok();
  if (result != CURLE_OK)
    return status::io_error("the Docker engine at " + socket + " did not answer: " + curl_easy_strerror(result));
  return status::ok();
}

const std::function<bool()> never_cancelled;

// Splits a body into lines, each a JSON message (the engine ends each with '\n'; /events and
// /build may put several in one chunk or one across chunks).
struct json_lines {
  const std::function<bool(const nlohmann::json&)>* on_message;
  std::string pending;
  bool stopped = false;
  bool feed(const char* data, size_t n) {
    pending.append(data, n);
    size_t start = 0;
    for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1)
      if (!deliver(pending.substr(start, nl - start))) {
        pending.clear();
        return false;
      }
    pending.erase(0, start);
    return true;
  }
  bool deliver(const std::string& line) {
    if (line.find_first_not_of(" \r\t") == std::string::npos) return true;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded()) j = nlohmann::json{{"message", line}};  // a plain-text error body
    bool go = true;
    try {
      go = (*on_message)(j);
    } catch (const std::exception&) {  // never through libcurl's C frames: that message is skipped
    }
    if (!go) {
      stopped = true;
      return false;
    }
    return true;
  }
};

size_t json_lines_cb(char* data, size_t size, size_t n, void* user) {
  auto* l = static_cast<json_lines*>(user);
  return l->feed(data, size * n) ? size * n : 0;
}

size_t collect_cb(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

// The logs of a container without a TTY come as frames: [stream, 0, 0, 0, size (big endian)]
// then `size` bytes. API 1.41 labels both forms application/vnd.docker.raw-stream, so the
// first bytes decide: a TTY container's raw output passes through as stdout.
struct log_frames {
  const std::function<bool(const char*, size_t, bool)>* on_output;
  std::string pending;
  int framed = -1;  // -1: not known yet
  bool stopped = false;
  bool feed(const char* data, size_t n) {
    pending.append(data, n);
    if (framed < 0) {
      if (pending.size() < 4) return true;
      framed = (pending[0] == 0 || pending[0] == 1 || pending[0] == 2) && pending[1] == 0 && pending[2] == 0 &&
               pending[3] == 0;
    }
    if (!framed) {
      bool go = (*on_output)(pending.data(), pending.size(), false);
      pending.clear();
      return go || !(stopped = true);
    }
    size_t at = 0;
    while (pending.size() - at >= 8) {
      auto* h = reinterpret_cast<const unsigned char*>(pending.data() + at);
      size_t len = (size_t{h[4]} << 24) | (size_t{h[5]} << 16) | (size_t{h[6]} << 8) | size_t{h[7]};
      if (pending.size() - at - 8 < len) break;
      if (len > 0 && !(*on_output)(pending.data() + at + 8, len, h[0] == 2)) {
        stopped = true;
        return false;
      }
      at += 8 + len;
    }
    pending.erase(0, at);
    return true;
  }
};

size_t log_frames_cb(char* data, size_t size, size_t n, void* user) {
  return static_cast<log_frames*>(user)->feed(data, size * n) ? size * n : 0;
}

}  // namespace

std::string engine_reply::error() const {
  std::string words;
  if (body.is_object() && body.contains("message") && body["message"].is_string())
    words = body["message"].get<std::string>();
  else
    words = raw;
  while (!words.empty() && (words.back() == '\n' || words.back() == '\r')) words.pop_back();
  return "the Docker engine answered " + std::to_string(http) + (words.empty() ? "" : ": " + words);
}

docker_engine::docker_engine(std::string host) {
  const std::string scheme = "unix://";
  socket_ = host.rfind(scheme, 0) == 0 ? host.substr(scheme.size()) : host;
}

status docker_engine::call(const std::string& method, const std::string& path, const nlohmann::json& body,
                           engine_reply* out, std::chrono::milliseconds timeout) const {
  return body.is_null() ? call_raw(method, path, "", "", out, timeout)
                        : call_raw(method, path, body.dump(), "application/json", out, timeout);
}

status docker_engine::call_raw(const std::string& method, const std::string& path, const std::string& payload,
                               const std::string& content_type, engine_reply* out,
                               std::chrono::milliseconds timeout) const {
  global_init();
  easy_handle e;
  prepare(e, socket_, method, path, timeout);
  if (!content_type.empty()) e.headers = curl_slist_append(e.headers, ("Content-Type: " + content_type).c_str());
  if (!content_type.empty() || method == "POST") {
    curl_easy_setopt(e.h, CURLOPT_POSTFIELDS, payload.c_str());
    curl_easy_setopt(e.h, CURLOPT_POSTFIELDSIZE, static_cast<long>(payload.size()));
  }
  if (e.headers) curl_easy_setopt(e.h, CURLOPT_HTTPHEADER, e.headers);
  engine_reply reply;
  curl_easy_setopt(e.h, CURLOPT_WRITEFUNCTION, collect_cb);
  curl_easy_setopt(e.h, CURLOPT_WRITEDATA, &reply.raw);
  if (auto s = perform(e, socket_, never_cancelled, nullptr, &reply.http); !s) return s;
  if (!reply.raw.empty()) {
    reply.body = nlohmann::json::parse(reply.raw, nullptr, false);
    if (reply.body.is_discarded()) reply.body = nullptr;
  }
  if (out) *out = std::move(reply);
  return status::ok();
}

status docker_engine::stream_json(const std::string& method, const std::string& path,
                                  const std::filesystem::path& body_file, const std::string& content_type,
                                  const std::vector<std::string>& headers,
                                  const std::function<bool(const nlohmann::json&)>& on_message,
                                  const std::function<bool()>& cancelled, std::chrono::milliseconds timeout,
                                  long* http) const {
  global_init();
  easy_handle e;
  prepare(e, socket_, method, path, timeout);
  if (!body_file.empty()) {
    std::error_code ec;
    auto size = std::filesystem::file_size(body_file, ec);
    if (ec || !(e.body = std::fopen(body_file.c_str(), "rb")))
      return status::not_found("cannot read " + body_file.string());
    curl_easy_setopt(e.h, CURLOPT_POST, 1L);
    curl_easy_setopt(e.h, CURLOPT_READFUNCTION, read_file_cb);
    curl_easy_setopt(e.h, CURLOPT_READDATA, e.body);
    curl_easy_setopt(e.h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(size));
    if (!content_type.empty()) e.headers = curl_slist_append(e.headers, ("Content-Type: " + content_type).c_str());
  } else if (method == "POST") {
    curl_easy_setopt(e.h, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(e.h, CURLOPT_POSTFIELDSIZE, 0L);
  }
  e.headers = curl_slist_append(e.headers, "Expect:");  // no 100-continue round trip for the tar
  for (auto& h : headers) e.headers = curl_slist_append(e.headers, h.c_str());
  curl_easy_setopt(e.h, CURLOPT_HTTPHEADER, e.headers);
  json_lines lines{&on_message, {}, false};
  curl_easy_setopt(e.h, CURLOPT_WRITEFUNCTION, json_lines_cb);
  curl_easy_setopt(e.h, CURLOPT_WRITEDATA, &lines);
  auto s = perform(e, socket_, cancelled, &lines.stopped, http);
  if (s && !lines.stopped && !lines.pending.empty()) lines.deliver(lines.pending);  // a last line without '\n'
  return s;
}

status docker_engine::stream_logs(const std::string& path,
                                  const std::function<bool(const char* data, size_t size, bool is_stderr)>& on_output,
                                  const std::function<bool()>& cancelled, std::chrono::milliseconds timeout,
                                  long* http) const {
  global_init();
  easy_handle e;
  prepare(e, socket_, "GET", path, timeout);
  log_frames frames{&on_output, {}, -1, false};
  curl_easy_setopt(e.h, CURLOPT_WRITEFUNCTION, log_frames_cb);
  curl_easy_setopt(e.h, CURLOPT_WRITEDATA, &frames);
  auto s = perform(e, socket_, cancelled, &frames.stopped, http);
  // A short reply (an error body, or output under 4 bytes) never decided its form: as it is.
  if (s && !frames.stopped && frames.framed < 0 && !frames.pending.empty())
    on_output(frames.pending.data(), frames.pending.size(), false);
  return s;
}

status docker_engine::ping(std::chrono::milliseconds timeout) const {
  engine_reply r;
  if (auto s = call("GET", "/_ping", nullptr, &r, timeout); !s) return s;
  if (r.http != 200 || r.raw != "OK") return status::io_error("the Docker engine's /_ping: " + r.error());
  return status::ok();
}

std::string default_docker_host() {
  if (const char* h = std::getenv("DOCKER_HOST"); h && std::strncmp(h, "unix://", 7) == 0) return h;
  return "unix:///var/run/docker.sock";
}

std::string url_encode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace berth
