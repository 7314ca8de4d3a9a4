// One SSE connection following one deployment. It subscribes to production:<name> once and
// then only receives what is pushed to it (each new state, each batch of log lines), so a fast
// deploy shows every phase and an idle stream costs nothing but a keep-alive comment. Per
// connection state only: what was sent.
#pragma once
#include <chrono>
#include <memory>
#include <string>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "http/server.hpp"

namespace httplib {
class DataSink;
}

namespace berth::http {

class deployment_stream {
 public:
  deployment_stream(const context& ctx, std::string id);
  // Subscribes; false (with the error) when the deployment cannot be followed.
  caf::error open();
  // One round of the chunked content provider; false drops the connection.
  bool step(httplib::DataSink& sink);

 private:
  using clock_type = std::chrono::steady_clock;
  bool send(httplib::DataSink& sink, const std::string& frame);
  bool send_progress(httplib::DataSink& sink, const nlohmann::json& detail);
  bool send_lines(httplib::DataSink& sink, const std::vector<std::string>& lines);
  bool finish(httplib::DataSink& sink, const nlohmann::json& detail);
  // After a long silence: is the deployment over (its end may have been pushed to an
  // incarnation of production that died)? discarded = could not ask.
  nlohmann::json check();

  const context& ctx_;
  std::string id_;
  std::unique_ptr<caf::scoped_actor> self_;  // receives the pushes
  nlohmann::json first_;                     // the state at subscription
  std::vector<std::string> first_lines_;
  nlohmann::json last_progress_;             // null: nothing sent yet
  size_t phases_seen_ = 0;                   // entries of detail["phases"] reported
  bool started_ = false;
  int failures_ = 0;
  clock_type::time_point opened_, last_write_, last_heard_;
};

}  // namespace berth::http
