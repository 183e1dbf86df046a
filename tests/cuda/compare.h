// What the CUDA tests share: host-drawn random inputs, the one error measure
// every comparison uses, and running a function on both devices with the same
// inputs and the same backward seed. Header-only, so the CUDA suite needs no
// extra sources (tests/gradcheck.cpp belongs to the CPU suite).
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <vector>

#include "core/ops.h"
#include "core/tensor.h"

namespace pixgrad::cuda_testing {

inline constexpr Device kGpu = Device::cuda(0);

using Function = std::function<Tensor(const std::vector<Tensor>&)>;

// Uniform float32 in [low, high) on the host, from a private generator so that
// tests do not disturb each other's random streams.
inline Tensor random_tensor(const Shape& shape, uint64_t seed, double low = -1, double high = 1) {
  Generator generator(seed);
  return Tensor::uniform(shape, low, high, generator);
}

// max |actual - expected| / max(1, max |expected|).
inline double relative_error(const std::vector<double>& actual, const std::vector<double>& expected) {
  REQUIRE(actual.size() == expected.size());
  double scale = 1, worst = 0;
  for (double v : expected) scale = std::max(scale, std::abs(v));
  for (size_t i = 0; i < actual.size(); ++i) {
    const double difference = std::abs(actual[i] - expected[i]);
    worst = std::max(worst, std::isnan(difference) ? std::numeric_limits<double>::infinity() : difference);
  }
  return worst / scale;
}

inline double relative_error(const Tensor& actual, const Tensor& expected) {
  REQUIRE(actual.defined());
  REQUIRE(expected.defined());
  REQUIRE(shape_str(actual.shape()) == shape_str(expected.shape()));
  return relative_error(actual.to_double_vector(), expected.to_double_vector());
}

// How many elements differ, compared as values (+0 equals -0). Exact checks
// count rather than compare vectors, so a failure does not print a million
// numbers.
inline int64_t count_unequal(const Tensor& actual, const Tensor& expected) {
  REQUIRE(shape_str(actual.shape()) == shape_str(expected.shape()));
  const std::vector<float> a = actual.to_vector(), b = expected.to_vector();
  int64_t unequal = 0;
  for (size_t i = 0; i < a.size(); ++i) unequal += a[i] != b[i];
  return unequal;
}

inline int64_t count_unequal(const Tensor& actual, float value) {
  int64_t unequal = 0;
  for (const float v : actual.to_vector()) unequal += v != value;
  return unequal;
}

// A leaf on `device` holding the values of the host tensor `values`.
inline Tensor leaf_on(const Tensor& values, Device device, bool requires_grad = true) {
  Tensor leaf = values.detach().to(device);
  if (leaf.is_cpu()) leaf = leaf.clone();  // never flag the caller's tensor
  leaf.set_requires_grad(requires_grad);
  return leaf;
}

// The output of f and the gradients of sum(f(x) * R) for every input x, R a
// random tensor fixed by `projection_seed` (the same on every device).
struct Evaluation {
  Tensor output;
  std::vector<Tensor> grads;
};

inline Evaluation evaluate(const Function& f, const std::vector<Tensor>& inputs, Device device,
                           uint64_t projection_seed = 4242) {
  std::vector<Tensor> leaves;
  for (const Tensor& input : inputs) leaves.push_back(leaf_on(input, device));
  Evaluation result;
  result.output = f(leaves);
  REQUIRE(result.output.device() == device);
  const Tensor projection = random_tensor(result.output.shape(), projection_seed).to(device);
  sum(mul(result.output, projection)).backward();
  for (const Tensor& leaf : leaves) result.grads.push_back(leaf.grad());
  return result;
}

// The CUDA evaluation against the CPU one: output and every gradient.
inline void check_matches(const Evaluation& gpu, const Evaluation& cpu, double tolerance) {
  {
    INFO("output " << shape_str(cpu.output.shape()));
    CHECK(relative_error(gpu.output, cpu.output) < tolerance);
  }
  REQUIRE(gpu.grads.size() == cpu.grads.size());
  for (size_t i = 0; i < cpu.grads.size(); ++i) {
    INFO("gradient of input " << i);
    REQUIRE(cpu.grads[i].defined());
    REQUIRE(gpu.grads[i].defined());
    CHECK(gpu.grads[i].is_cuda());
    CHECK(relative_error(gpu.grads[i], cpu.grads[i]) < tolerance);
  }
}

// f on CUDA against f on the CPU, forward and backward, on host `inputs`.
inline void check_against_cpu(const Function& f, const std::vector<Tensor>& inputs, double tolerance) {
  const Evaluation cpu = evaluate(f, inputs, Device::cpu());
  const Evaluation gpu = evaluate(f, inputs, kGpu);
  check_matches(gpu, cpu, tolerance);
}

// The first i with |actual[i] - expected[i]| > relative * |expected[i]| +
// absolute, or -1: for values that span many orders of magnitude, such as
// softplus tails.
inline int64_t first_mismatch(const std::vector<double>& actual, const std::vector<double>& expected, double relative,
                              double absolute) {
  REQUIRE(actual.size() == expected.size());
  for (size_t i = 0; i < actual.size(); ++i)
    if (!(std::abs(actual[i] - expected[i]) <= relative * std::abs(expected[i]) + absolute))
      return static_cast<int64_t>(i);
  return -1;
}

}  // namespace pixgrad::cuda_testing
