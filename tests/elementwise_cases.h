// The elementwise ops the CUDA suite compares with the CPU, shared with the
// CPU suite's check of the tolerance they are held to (tests/test_compare.cpp).
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <pixgrad/core/ops.h>

namespace pixgrad::testing {

using UnaryOpCase = std::pair<std::string, std::function<Tensor(const Tensor&)>>;

inline std::vector<UnaryOpCase> unary_op_cases() {
  return {
      {"relu", [](const Tensor& x) { return relu(x); }},
      {"leaky_relu(0.2)", [](const Tensor& x) { return leaky_relu(x, 0.2); }},
      {"tanh", [](const Tensor& x) { return tanh(x); }},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }},
      {"softplus", [](const Tensor& x) { return softplus(x); }},
      {"abs", [](const Tensor& x) { return abs(x); }},
      {"neg", [](const Tensor& x) { return neg(x); }},
  };
}

// A chain in which x feeds four ops and y two, so their gradients are
// accumulated from several uses.
inline Tensor elementwise_chain(const Tensor& x, const Tensor& y) {
  return softplus(mul(tanh(add(x, y)), sigmoid(x))) - leaky_relu(x * x, 0.2) / (abs(y) + 1.0) + relu(x);
}

}  // namespace pixgrad::testing
