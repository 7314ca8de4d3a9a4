// JSON replies and the bridge from HTTP handler threads to actors. Handlers hold no state:
// they validate, ask an actor, and translate the answer.
#pragma once
#include <chrono>
#include <optional>
#include <string>

#include <caf/all.hpp>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "messages/errors.hpp"

namespace berth::http {

// The HTTP status of an error code: 400 for bad input, 404, 409, 503 when berth or a backend
// cannot do it now, 500 otherwise.
int http_status(errc x);

void reply_json(httplib::Response& res, int status, const nlohmann::json& body);
void reply_raw_json(httplib::Response& res, int status, const std::string& body);
// {"error":{"code","message"}} with the status that belongs to the code.
void reply_error(httplib::Response& res, errc code, const std::string& message);
void reply_error(httplib::Response& res, int status, const std::string& code,
                 const std::string& message);
void reply_error(httplib::Response& res, const caf::error& err);
// 503 {"error":{"code":"saturated",...}} with Retry-After: berth cannot take this call now.
void reply_saturated(httplib::Response& res, const std::string& message, int retry_after_s);

// Sends a request to `dest` and waits for the answer; an error when the actor is missing,
// fails or does not answer in time (sec::request_timeout). The wait is this thread's own timed
// wait: a request timeout would go through CAF's clock thread, waking it on every request.
template <class T, class... Ts>
caf::expected<T> ask(caf::actor_system& sys, const caf::actor& dest,
                     std::chrono::milliseconds timeout, Ts&&... xs) {
  if (!dest) return make_error(errc::unavailable, "berth is starting or restarting; retry");
  std::optional<T> value;
  caf::error failure;
  {
    caf::scoped_actor self{sys};
    auto answer = self->request(dest, caf::infinite, std::forward<Ts>(xs)...);
    caf::blocking_actor::accept_one_cond one;
    self->varargs_receive(
        one, answer.id(), [&](T& v) { value = std::move(v); }, [&](caf::error& e) { failure = std::move(e); },
        caf::after(caf::duration{timeout}) >> [&] { failure = caf::make_error(caf::sec::request_timeout); });
  }
  if (value) return std::move(*value);
  return failure;
}

}  // namespace berth::http
