// Result<T>: a value or an Error, for every recoverable failure in ecapture.
#pragma once

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace ecapture {

// What failed, on what, and what to do; `err` is the errno when one applies (0 otherwise).
struct Error {
  std::string message;
  int err = 0;

  std::string to_string() const {
    if (err == 0) return message;
    return fmt::format("{}: {}", message, std::strerror(err));
  }
};

template <typename... Args>
Error make_error(fmt::format_string<Args...> f, Args&&... args) {
  return Error{fmt::format(f, std::forward<Args>(args)...), 0};
}

template <typename... Args>
Error make_errno_error(int err, fmt::format_string<Args...> f, Args&&... args) {
  return Error{fmt::format(f, std::forward<Args>(args)...), err < 0 ? -err : err};
}

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Error e) : v_(std::move(e)) {}      // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error e) : e_(std::move(e)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return !e_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const& { return *e_; }
  Error&& error() && { return std::move(*e_); }

 private:
  std::optional<Error> e_;
};

inline Result<void> ok_result() { return {}; }

}  // namespace ecapture

#define ECAPTURE_CONCAT_INNER(a, b) a##b
#define ECAPTURE_CONCAT(a, b) ECAPTURE_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)                                  \
  do {                                                         \
    auto ecapture_status_ = (expr);                            \
    if (!ecapture_status_.ok()) return std::move(ecapture_status_).error(); \
  } while (0)

#define ECAPTURE_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                    \
  if (!tmp.ok()) return std::move(tmp).error();         \
  lhs = std::move(tmp).value()

#define ASSIGN_OR_RETURN(lhs, expr) \
  ECAPTURE_ASSIGN_OR_RETURN_IMPL(ECAPTURE_CONCAT(ecapture_result_, __LINE__), lhs, expr)
