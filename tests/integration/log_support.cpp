#include "tests/integration/log_support.hpp"

#include <curl/curl.h>

#include <filesystem>

#include "tests/integration/deploy_support.hpp"

namespace berth::it {

namespace fs = std::filesystem;

sse_reader::sse_reader(uint16_t port, const std::string& path, const std::string& last_event_id) {
  std::string url = "http://127.0.0.1:" + std::to_string(port) + path;
  thread_ = std::thread([this, url, last_event_id] {
    CURL* c = curl_easy_init();
    handle_ = c;
    curl_slist* headers = curl_slist_append(nullptr, ("Authorization: Bearer " + test_token()).c_str());
    if (!last_event_id.empty()) headers = curl_slist_append(headers, ("Last-Event-ID: " + last_event_id).c_str());
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &sse_reader::on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, this);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, &sse_reader::on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, this);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 300L);  // a bound for a test that forgets to hang up
    auto rc = curl_easy_perform(c);
    long code = -1;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    char* type = nullptr;
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &type);
    {
      std::lock_guard<std::mutex> lock(mu_);
      status_ = code;
      if (type) content_type_ = type;
      ended_ = rc == CURLE_OK;  // the server closed the stream on its own
      finished_ = true;
    }
    cv_.notify_all();
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    stop_ = true;
  });
}

sse_reader::~sse_reader() {
  hang_up();
  if (thread_.joinable()) thread_.join();
}

void sse_reader::hang_up() { stop_ = true; }

size_t sse_reader::on_data(char* p, size_t size, size_t n, void* self) {
  auto* r = static_cast<sse_reader*>(self);
  if (r->stop_) return 0;  // aborts: the connection closes
  {
    std::lock_guard<std::mutex> lock(r->mu_);
    r->learn_head();
    r->raw_.append(p, size * n);
    r->buffer_.append(p, size * n);
    r->parse();
  }
  r->cv_.notify_all();
  return size * n;
}

// Called on the reader's thread (from the write callback) while the transfer runs.
void sse_reader::learn_head() {
  if (status_ != -1) return;
  long code = -1;
  curl_easy_getinfo(static_cast<CURL*>(handle_), CURLINFO_RESPONSE_CODE, &code);
  char* type = nullptr;
  curl_easy_getinfo(static_cast<CURL*>(handle_), CURLINFO_CONTENT_TYPE, &type);
  if (type) content_type_ = type;
  status_ = code;
}

int sse_reader::on_progress(void* self, long long, long long, long long, long long) {
  return static_cast<sse_reader*>(self)->stop_ ? 1 : 0;
}

// One event per blank-line-terminated block (the server sends "\n" line ends).
void sse_reader::parse() {
  for (size_t end; (end = buffer_.find("\n\n")) != std::string::npos;) {
    std::string block = buffer_.substr(0, end + 1);
    buffer_.erase(0, end + 2);
    sse_message m;
    bool any = false;
    for (size_t at = 0; at < block.size();) {
      auto nl = block.find('\n', at);
      auto line = block.substr(at, nl - at);
      at = nl + 1;
      auto colon = line.find(':');
      if (colon == 0) continue;  // a comment
      auto field = line.substr(0, colon);
      auto value = colon == std::string::npos ? "" : line.substr(colon + 1);
      if (!value.empty() && value[0] == ' ') value.erase(0, 1);
      if (field == "id") m.id = value, any = true;
      if (field == "event") m.event = value, any = true;
      if (field == "data") m.data += (m.data.empty() ? "" : "\n") + value, any = true;
    }
    if (!any) continue;
    m.body = json::parse(m.data, nullptr, false);
    messages_.push_back(std::move(m));
  }
}

bool sse_reader::wait_for(const std::function<bool(const std::vector<sse_message>&)>& pred,
                          std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return pred(messages_) || stop_; }) && pred(messages_);
}

bool sse_reader::wait_raw(const std::string& text, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return raw_.find(text) != std::string::npos || stop_; }) &&
         raw_.find(text) != std::string::npos;
}

bool sse_reader::wait_ended(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return finished_.load(); });
  return ended_;
}

std::vector<sse_message> sse_reader::messages() const {
  std::lock_guard<std::mutex> lock(mu_);
  return messages_;
}

std::string sse_reader::raw() const {
  std::lock_guard<std::mutex> lock(mu_);
  return raw_;
}

std::string sse_reader::content_type() const {
  std::lock_guard<std::mutex> lock(mu_);
  return content_type_;
}

std::string log_text(const std::vector<sse_message>& m) {
  std::string all;
  for (auto& e : m)
    if (e.event == "log" && e.body.is_object()) all += e.body.value("text", "");
  return all;
}

std::vector<sse_message> events_named(const std::vector<sse_message>& m, const std::string& name) {
  std::vector<sse_message> out;
  for (auto& e : m)
    if (e.event == name) out.push_back(e);
  return out;
}

std::string make_lines_app(const temp_dir& tmp, const std::string& dir, const std::string& tag) {
  auto path = tmp / dir;
  fs::create_directories(path);
  fs::copy_file(std::string(BERTH_TEST_APPS) + "/lines/server.py", path + "/server.py",
                fs::copy_options::overwrite_existing);
  write_file(path + "/TAG", tag + "\n");
  return path;
}

json lines_manifest(const std::string& name, const std::string& src) {
  return {{"name", name},
          {"source", {{"path", src}}},
          {"production",
           {{"command", {"python3", "server.py"}},
            {"health", {{"path", "/health"}, {"timeout_s", 10}, {"interval_ms", 100}, {"min_healthy_s", 0}}},
            {"keep", 2}}}};
}

int emit_lines(uint16_t port, int count) {
  auto r = fetch(port, "/emit?n=" + std::to_string(count), std::chrono::milliseconds(5000));
  return r.status == 200 ? std::stoi(r.body) : -1;
}

}  // namespace berth::it
