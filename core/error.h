// Errors raised by pixgrad. Every check names the op (or file) and the
// offending shapes, so that a failure reads as one self-explanatory line.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace pixgrad {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
template <typename... Parts>
std::string concat_message(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}
}  // namespace detail

// Throws pixgrad::Error with the streamed parts as its message.
template <typename... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  throw Error(detail::concat_message(parts...));
}

}  // namespace pixgrad

// PIXGRAD_CHECK(condition, "op: ", "message parts", ...) — throws pixgrad::Error.
#define PIXGRAD_CHECK(condition, ...)         \
  do {                                        \
    if (!(condition)) ::pixgrad::fail(__VA_ARGS__); \
  } while (0)
