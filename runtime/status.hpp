// A small result type in the spirit of leveldb::Status.
#pragma once
#include <string>
#include <utility>

namespace berth {

class status {
 public:
  enum class code { ok, not_found, corruption, io_error, invalid_argument, no_space };

  status() = default;
  static status ok() { return {}; }
  static status not_found(std::string m) { return {code::not_found, std::move(m)}; }
  static status corruption(std::string m) { return {code::corruption, std::move(m)}; }
  static status io_error(std::string m) { return {code::io_error, std::move(m)}; }
  static status invalid_argument(std::string m) { return {code::invalid_argument, std::move(m)}; }
  // The disk is full (ENOSPC, or berth's disk guard refused the write beforehand).
  static status no_space(std::string m) { return {code::no_space, std::move(m)}; }

  bool is_ok() const { return code_ == code::ok; }
  explicit operator bool() const { return is_ok(); }
  code which() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  status(code c, std::string m) : code_(c), message_(std::move(m)) {}
  code code_ = code::ok;
  std::string message_;
};

}  // namespace berth
