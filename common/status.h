// Status: the result of an operation that may fail, carried across module boundaries instead of
// exceptions (LevelDB style). A failed Status names the problem (message) and, where one is known,
// the fix (hint). Its code is the CLI exit code the failure maps to, so a module decides whether a
// failure is bad input (2), a refusal (3), a privilege problem (5) or a plain failure (1).
//
// Thread-safety: a Status is a value; copies are independent.
#pragma once

#include <string>
#include <utility>

#include "common/exit_codes.h"

namespace headshift {

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  static Status Ok() { return Status(); }
  static Status BadInput(std::string msg, std::string hint = {}) {
    return Status(ExitCode::kBadInput, std::move(msg), std::move(hint));
  }
  static Status Refused(std::string msg, std::string hint = {}) {
    return Status(ExitCode::kRefused, std::move(msg), std::move(hint));
  }
  static Status Failed(std::string msg, std::string hint = {}) {
    return Status(ExitCode::kFailed, std::move(msg), std::move(hint));
  }
  static Status NeedsOperator(std::string msg, std::string hint = {}) {
    return Status(ExitCode::kNeedsOperator, std::move(msg), std::move(hint));
  }
  static Status NoPrivilege(std::string msg, std::string hint = {}) {
    return Status(ExitCode::kNoPrivilege, std::move(msg), std::move(hint));
  }

  bool ok() const { return code_ == ExitCode::kOk; }
  ExitCode code() const { return code_; }
  const std::string& message() const { return message_; }
  const std::string& hint() const { return hint_; }

  // Returns a copy whose message is prefixed with `context: `.
  Status WithContext(const std::string& context) const {
    if (ok()) return *this;
    return Status(code_, context + ": " + message_, hint_);
  }

  // "message (fix: hint)" or "OK".
  std::string ToString() const;

 private:
  Status(ExitCode c, std::string msg, std::string hint)
      : code_(c), message_(std::move(msg)), hint_(std::move(hint)) {}

  ExitCode code_ = ExitCode::kOk;
  std::string message_;
  std::string hint_;
};

// A value or a failed Status.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(T value) : value_(std::move(value)), has_value_(true) {}  // NOLINT(implicit)
  StatusOr(Status status) : status_(std::move(status)) {}            // NOLINT(implicit)

  bool ok() const { return has_value_; }
  const Status& status() const { return status_; }
  // REQUIRES: ok()
  T& value() & { return value_; }
  const T& value() const& { return value_; }
  T&& value() && { return std::move(value_); }
  T* operator->() { return &value_; }
  const T* operator->() const { return &value_; }
  T& operator*() { return value_; }
  const T& operator*() const { return value_; }

 private:
  Status status_;
  T value_{};
  bool has_value_ = false;
};

#define HS_RETURN_IF_ERROR(expr)          \
  do {                                    \
    ::headshift::Status _hs_st = (expr);  \
    if (!_hs_st.ok()) return _hs_st;      \
  } while (0)

}  // namespace headshift
