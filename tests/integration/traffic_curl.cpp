// The HTTP clients of traffic_support over libcurl's easy API, for HTTP/2 over TLS (h2 by ALPN).
#include <curl/curl.h>

#include <algorithm>
#include <mutex>

#include "tests/integration/traffic_wire.hpp"

namespace berth::it::wire {

namespace {

using clock_type = std::chrono::steady_clock;

class curl_http : public traffic_client {
 public:
  curl_http(curl_kind kind, target t, std::string path, milliseconds every)
      : kind_(kind), t_(std::move(t)), path_(std::move(path)), every_(every) {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  }
  ~curl_http() override { stop(); }  // the thread uses our members: joined first

 protected:
  void run(std::atomic<bool>& stopping) override {
    stopping_ = &stopping;
    CURL* h = curl_easy_init();
    auto name = server_name(t_);
    // Connect to t.host while the URL (SNI, certificate name, :authority) names the site.
    curl_slist* resolve = curl_slist_append(nullptr, (name + ":" + std::to_string(t_.port) + ":" + t_.host).c_str());
    std::string url = "https://" + name + ":" + std::to_string(t_.port) + path_;
    for (uint64_t i = 0; !stopping.load(); ++i) {
      curl_easy_reset(h);
      curl_easy_setopt(h, CURLOPT_URL, url.c_str());
      curl_easy_setopt(h, CURLOPT_RESOLVE, resolve);
      curl_easy_setopt(h, CURLOPT_CAINFO, t_.tls.ca_file.c_str());
      curl_easy_setopt(h, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_2TLS);
      curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
      curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
      curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &curl_http::on_body);
      curl_easy_setopt(h, CURLOPT_WRITEDATA, this);
      curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
      curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, &curl_http::on_progress);
      curl_easy_setopt(h, CURLOPT_XFERINFODATA, this);
      std::string sent;
      if (kind_ == curl_kind::keepalive_post) {
        sent = "post " + std::to_string(i) + "\n";
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, sent.c_str());
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
      } else if (kind_ == curl_kind::new_connection) {
        curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
        curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
      }
      body_.clear();
      first_byte_ms_ = -1;
      t0_ = last_data_ = clock_type::now();
      CURLcode rc = curl_easy_perform(h);
      if (stopping.load()) break;  // our own end: not counted
      long status = 0, version = 0;
      curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
      curl_easy_getinfo(h, CURLINFO_HTTP_VERSION, &version);
      note_protocol(version == CURL_HTTP_VERSION_2_0 ? "h2" : "http/1.1");
      double ms = std::chrono::duration<double, std::milli>(clock_type::now() - t0_).count();
      if (rc != CURLE_OK)
        note_failed(std::string("curl: ") + curl_easy_strerror(rc));
      else if (status >= 500 || status < 200)
        note_failed("HTTP " + std::to_string(status) + " '" + body_.substr(0, 100) + "'");
      else if (kind_ == curl_kind::keepalive_post && body_ != sent)
        note_failed("POST echoed '" + body_.substr(0, 100) + "'");
      else
        note_ok(kind_ == curl_kind::streaming ? first_byte_ms_ : ms, kind_ == curl_kind::keepalive_post ? "echo" : body_);
      if (kind_ != curl_kind::streaming && pause(every_)) break;
    }
    curl_slist_free_all(resolve);
    curl_easy_cleanup(h);
  }

 private:
  static size_t on_body(char* data, size_t size, size_t n, void* self_) {
    auto* self = static_cast<curl_http*>(self_);
    auto now = clock_type::now();
    if (self->first_byte_ms_ < 0) self->first_byte_ms_ = std::chrono::duration<double, std::milli>(now - self->t0_).count();
    self->last_data_ = now;
    if (self->kind_ == curl_kind::streaming) self->note_progress();
    if (self->body_.size() < 4096) self->body_.append(data, size * n);
    return size * n;
  }
  // Ends a transfer on stop() and a stream that stalls past 2 s.
  static int on_progress(void* self_, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    auto* self = static_cast<curl_http*>(self_);
    if (self->stopping_->load()) return 1;
    return self->kind_ == curl_kind::streaming && clock_type::now() - self->last_data_ > milliseconds(2000) ? 1 : 0;
  }

  curl_kind kind_;
  target t_;
  std::string path_;
  milliseconds every_;
  std::atomic<bool>* stopping_ = nullptr;
  std::string body_;
  double first_byte_ms_ = -1;
  clock_type::time_point t0_, last_data_;
};

}  // namespace

std::unique_ptr<traffic_client> curl_client(curl_kind kind, target t, std::string path, milliseconds every) {
  return std::make_unique<curl_http>(kind, std::move(t), std::move(path), every);
}

}  // namespace berth::it::wire
