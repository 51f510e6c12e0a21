// Result<T, E>: the value of a parse or check, or the reason it failed.
//
// Untrusted input never throws in this project (see docs/architecture.md): parsers return a
// Result and the caller drops and counts the input by reason. GCC 12 in C++20 mode has no
// std::expected, so this is the small subset we need.
#pragma once

#include <utility>
#include <variant>

namespace ntpmon {

template <typename E>
struct Err {
  E error;
};

template <typename E>
Err(E) -> Err<E>;

template <typename T, typename E>
class Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Err<E> err) : v_(std::in_place_index<1>, err.error) {}      // NOLINT: implicit by design

  [[nodiscard]] bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T& operator*() & { return std::get<0>(v_); }
  const T& operator*() const& { return std::get<0>(v_); }

  [[nodiscard]] E error() const { return std::get<1>(v_); }

 private:
  std::variant<T, E> v_;
};

}  // namespace ntpmon
