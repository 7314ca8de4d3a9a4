#include "cli/client/http_client.hpp"

#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fstream>
#include <sstream>

namespace berth::cli {

namespace {

constexpr long connect_timeout_s = 10;
// A preview start waits for its health check (up to 180 s on the server): requests may take long.
constexpr long request_timeout_s = 300;
constexpr long silent_stream_s = 45;

std::string read_token_file(const std::string& data) {
  std::ifstream in(data + "/token");
  if (!in) return "";
  std::string token;
  in >> token;  // one token; the trailing newline is not part of it
  return token;
}

struct global_init {
  global_init() { curl_global_init(CURL_GLOBAL_DEFAULT); }
};

}  // namespace

struct http_client::curl_handle {
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  char error[CURL_ERROR_SIZE] = {0};
  ~curl_handle() {
    if (headers) curl_slist_free_all(headers);
    if (easy) curl_easy_cleanup(easy);
  }
};

http_client::http_client(client_options opts) : opts_(std::move(opts)), curl_(std::make_unique<curl_handle>()) {
  static global_init once;
  while (!opts_.url.empty() && opts_.url.back() == '/') opts_.url.pop_back();
  if (opts_.token.empty()) opts_.token = read_token_file(opts_.data);
  curl_->easy = curl_easy_init();
}

http_client::~http_client() = default;

std::string http_client::escape(const std::string& value) const {
  char* out = curl_easy_escape(curl_->easy, value.data(), static_cast<int>(value.size()));
  std::string s = out ? out : "";
  curl_free(out);
  return s;
}

void http_client::prepare(const std::string& method, const std::string& path, const std::vector<std::string>& headers) {
  CURL* c = curl_->easy;
  curl_easy_reset(c);
  if (curl_->headers) curl_slist_free_all(curl_->headers);
  curl_->headers = nullptr;
  curl_->error[0] = 0;
  auto add = [&](const std::string& h) { curl_->headers = curl_slist_append(curl_->headers, h.c_str()); };
  if (!opts_.token.empty()) add("Authorization: Bearer " + opts_.token);
  for (auto& h : headers) add(h);
  curl_easy_setopt(c, CURLOPT_URL, (opts_.url + path).c_str());
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, curl_->headers);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_->error);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, connect_timeout_s);
  curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
  if (!opts_.cacert.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, opts_.cacert.c_str());
}

namespace {

size_t append_body(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

std::string describe(CURLcode code, const char* buffer) {
  return buffer && *buffer ? std::string(buffer) : std::string(curl_easy_strerror(code));
}

}  // namespace

response http_client::request(const std::string& method, const std::string& path, const std::string& body,
                              long timeout_s) {
  response r;
  std::vector<std::string> headers;
  if (!body.empty()) headers.push_back("Content-Type: application/json");
  prepare(method, path, headers);
  CURL* c = curl_->easy;
  if (method == "HEAD") curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  if (method != "GET" && method != "HEAD") {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout_s > 0 ? timeout_s : request_timeout_s);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, append_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
  auto code = curl_easy_perform(c);
  if (code != CURLE_OK) {
    r.error = describe(code, curl_->error);
    return r;
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  r.status = static_cast<int>(status);
  return r;
}

namespace {

struct stream_state {
  CURL* easy;
  const std::function<bool(const sse_message&)>* on_event;
  const std::atomic<bool>* stop;
  const std::function<void()>* on_tick;
  sse_reader reader;
  int status = 0;
  std::string body;
  bool stopped = false;
};

size_t on_stream_bytes(char* data, size_t size, size_t n, void* user) {
  auto& s = *static_cast<stream_state*>(user);
  if (s.status == 0) {
    long status = 0;
    curl_easy_getinfo(s.easy, CURLINFO_RESPONSE_CODE, &status);
    s.status = static_cast<int>(status);
  }
  if (s.status != 200) {
    s.body.append(data, size * n);
    return size * n;
  }
  for (auto& ev : s.reader.feed(std::string_view(data, size * n))) {
    if (!(*s.on_event)(ev) || (s.stop && s.stop->load())) {
      s.stopped = true;
      return 0;  // aborts the transfer
    }
  }
  return size * n;
}

int on_stream_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto& s = *static_cast<stream_state*>(user);
  if (s.stop && s.stop->load()) {
    s.stopped = true;
    return 1;
  }
  if (*s.on_tick) (*s.on_tick)();
  return 0;
}

}  // namespace

stream_result http_client::stream(const std::string& path, const std::vector<std::string>& headers,
                                  const std::function<bool(const sse_message&)>& on_event,
                                  const std::atomic<bool>* stop, const std::function<void()>& on_tick) {
  auto all = headers;
  all.push_back("Accept: text/event-stream");
  prepare("GET", path, all);
  CURL* c = curl_->easy;
  stream_state s{c, &on_event, stop, &on_tick};
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_stream_bytes);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_stream_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &s);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, silent_stream_s);
  auto code = curl_easy_perform(c);
  stream_result r;
  r.status = s.status;
  if (r.status == 0) {  // headers came (or not) but no body byte yet
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    r.status = static_cast<int>(status);
  }
  if (s.stopped) {
    r.how = stream_end::stopped;
  } else if (code != CURLE_OK) {
    r.how = stream_end::dropped;
    r.error = describe(code, curl_->error);
  } else {
    r.how = r.status == 200 ? stream_end::ended : stream_end::refused;
    r.body = std::move(s.body);
  }
  return r;
}

namespace {

struct upload_state {
  int fd;
  uint64_t size;
  uint64_t offset = 0;
  int read_errno = 0;
  const std::function<void(uint64_t, uint64_t)>* on_progress;
};

size_t read_upload(char* buffer, size_t size, size_t n, void* user) {
  auto& s = *static_cast<upload_state*>(user);
  size_t want = static_cast<size_t>(std::min<uint64_t>(size * n, s.size - s.offset));
  if (want == 0) return 0;
  ssize_t got;
  do got = ::pread(s.fd, buffer, want, static_cast<off_t>(s.offset));
  while (got < 0 && errno == EINTR);
  if (got <= 0) {  // the file shrank or cannot be read: never send fewer bytes than announced
    s.read_errno = got < 0 ? errno : EIO;
    return CURL_READFUNC_ABORT;
  }
  s.offset += static_cast<uint64_t>(got);
  return static_cast<size_t>(got);
}

int on_upload_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t ulnow) {
  auto& s = *static_cast<upload_state*>(user);
  if (*s.on_progress) (*s.on_progress)(static_cast<uint64_t>(ulnow), s.size);
  return 0;
}

}  // namespace

response http_client::upload(const std::string& path, int fd, uint64_t size, const std::string& content_type,
                             const std::function<void(uint64_t, uint64_t)>& on_progress) {
  response r;
  prepare("PUT", path, {"Content-Type: " + content_type, "Expect: 100-continue"});
  CURL* c = curl_->easy;
  upload_state s{fd, size, 0, 0, &on_progress};
  curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(size));
  curl_easy_setopt(c, CURLOPT_READFUNCTION, read_upload);
  curl_easy_setopt(c, CURLOPT_READDATA, &s);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_upload_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &s);
  // No overall timeout (a large body on a slow link takes what it takes), but a stalled one ends.
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, request_timeout_s);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, append_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
  auto code = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (s.read_errno != 0) {  // whatever the server said, it did not get the whole body
    r.error = std::string("reading the body to send: ") + std::strerror(s.read_errno);
    r.body.clear();
    return r;
  }
  if (code != CURLE_OK && status < 200) {
    r.error = describe(code, curl_->error);
    return r;
  }
  // An answer that came before the whole body was sent (a refusal) still counts as the answer.
  r.status = static_cast<int>(status);
  return r;
}

}  // namespace berth::cli
