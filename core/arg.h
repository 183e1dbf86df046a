// PIXGRAD_ARG: one option of an options builder, as libtorch's TORCH_ARG.
#pragma once

// Declares an option with a chaining setter and a getter:
// `PIXGRAD_ARG(int64_t, stride) = 1;` gives `.stride(2)` and `.stride()`.
#define PIXGRAD_ARG(T, name)                \
 public:                                    \
  auto& name(const T& new_value) {          \
    name##_ = new_value;                    \
    return *this;                           \
  }                                         \
  const T& name() const { return name##_; } \
                                            \
 private:                                   \
  T name##_
