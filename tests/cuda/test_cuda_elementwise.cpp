// Activations and arithmetic on CUDA against the CPU ops: the output, and the
// gradient of sum(op(x) * R) through autograd, on odd sizes.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "../elementwise_cases.h"
#include "cuda_testing.h"
#include <pixgrad/core/ops.h>

using namespace pixgrad;
using namespace pixgrad::cuda_testing;
using Catch::Matchers::Contains;

namespace {

// Every comparison uses kElementwiseTolerance (tests/compare.h).
constexpr Tolerance kTolerance = kElementwiseTolerance;

// One element, a few, more than a million (a prime, so no launch shape divides
// it), and an NCHW tensor.
const std::vector<Shape> kShapes{{1}, {7}, {1000003}, {3, 5, 7, 11}};

std::vector<std::pair<std::string, Function>> binary_ops() {
  return {
      {"add", [](const std::vector<Tensor>& in) { return add(in[0], in[1]); }},
      {"sub", [](const std::vector<Tensor>& in) { return sub(in[0], in[1]); }},
      {"mul", [](const std::vector<Tensor>& in) { return mul(in[0], in[1]); }},
      {"div", [](const std::vector<Tensor>& in) { return div(in[0], in[1]); }},
  };
}

std::vector<std::pair<std::string, Function>> scalar_ops() {
  return {
      {"x + 0.75", [](const std::vector<Tensor>& in) { return add(in[0], 0.75); }},
      {"x - -1.5", [](const std::vector<Tensor>& in) { return sub(in[0], -1.5); }},
      {"x * -3.25", [](const std::vector<Tensor>& in) { return mul(in[0], -3.25); }},
      {"x / 0.3", [](const std::vector<Tensor>& in) { return div(in[0], 0.3); }},
      {"2.5 + x", [](const std::vector<Tensor>& in) { return 2.5 + in[0]; }},
      {"1.5 * x", [](const std::vector<Tensor>& in) { return 1.5 * in[0]; }},
      {"-x", [](const std::vector<Tensor>& in) { return -in[0]; }},
  };
}

}  // namespace

TEST_CASE("unary ops on CUDA match the CPU, forward and backward", "[cuda][elementwise]") {
  uint64_t seed = 100;
  for (const auto& [name, op] : unary_op_cases()) {
    const Function f = [op = op](const std::vector<Tensor>& in) { return op(in[0]); };
    for (const Shape& shape : kShapes) {
      // [-4, 4] exercises the curved part; [-40, 40] the saturated tails.
      for (const double range : {4.0, 40.0}) {
        INFO(name << " on " << shape_str(shape) << ", inputs in [-" << range << ", " << range << ")");
        check_against_cpu(f, {random_tensor(shape, ++seed, -range, range)}, kTolerance);
      }
    }
  }
}

TEST_CASE("unary ops on CUDA match the CPU at zeros and huge |x|, element by element", "[cuda][elementwise]") {
  // Signed zeros pick the subgradient conventions; +-88 and beyond reach
  // exp's overflow and the denormal tails of softplus and sigmoid, where a
  // naive log(1 + exp(x)) gives 0 or inf.
  // And a NaN, which every op must pass on (the divergence check relies on it).
  const Tensor x = Tensor::from_vector(std::vector<float>{-1000, -100, -88, -20, -1, -1e-30f, -0.0f, 0, 1e-30f, 1, 20,
                                                          88, 100, 1000, std::nanf("")},
                                       {15});
  for (const auto& [name, op] : unary_op_cases()) {
    INFO(name);
    const Function f = [op = op](const std::vector<Tensor>& in) { return op(in[0]); };
    const Evaluation cpu = evaluate(f, {x}, Device::cpu());
    const Evaluation gpu = evaluate(f, {x}, kGpu);
    // Relative only: the values span 1e-30 to 1e3, so an RMS floor would excuse the small ones.
    PIXGRAD_CHECK_CLOSE(gpu.output, cpu.output, (Tolerance{kTolerance.relative, 0, 1e-37}));
    PIXGRAD_CHECK_CLOSE(gpu.grads[0], cpu.grads[0], (Tolerance{kTolerance.relative, 0, 1e-37}));
    const std::vector<double> actual = gpu.output.to_double_vector();
    for (size_t i = 0; i + 1 < actual.size(); ++i) CHECK(std::isfinite(actual[i]));
    CHECK(std::isnan(actual.back()));
  }
}

TEST_CASE("tensor-tensor arithmetic on CUDA matches the CPU, with gradients", "[cuda][elementwise]") {
  uint64_t seed = 200;
  for (const auto& [name, f] : binary_ops()) {
    for (const Shape& shape : kShapes) {
      INFO(name << " on " << shape_str(shape));
      // The divisor stays away from zero.
      check_against_cpu(f, {random_tensor(shape, ++seed, -2, 2), random_tensor(shape, ++seed, 0.5, 2)}, kTolerance);
    }
  }
}

TEST_CASE("tensor-scalar arithmetic on CUDA matches the CPU, with gradients", "[cuda][elementwise]") {
  uint64_t seed = 300;
  for (const auto& [name, f] : scalar_ops()) {
    for (const Shape& shape : kShapes) {
      INFO(name << " on " << shape_str(shape));
      check_against_cpu(f, {random_tensor(shape, ++seed, -2, 2)}, kTolerance);
    }
  }
}

TEST_CASE("a chain of elementwise ops on CUDA matches the CPU, gradients summed over every use",
          "[cuda][elementwise]") {
  // x feeds four ops and y two, so their gradients are accumulated on the device.
  const Function f = [](const std::vector<Tensor>& in) { return elementwise_chain(in[0], in[1]); };
  for (const Shape& shape : kShapes) {
    INFO(shape_str(shape));
    check_against_cpu(f, {random_tensor(shape, 401, -3, 3), random_tensor(shape, 402, -3, 3)}, kTolerance);
  }
}

TEST_CASE("arithmetic across devices is refused with both devices named", "[cuda][elementwise][errors]") {
  const Tensor on_cpu = Tensor::ones({2, 3});
  const Tensor on_gpu = Tensor::ones({2, 3}, kGpu);
  CHECK_THROWS_WITH(add(on_cpu, on_gpu), Contains("add") && Contains("cpu") && Contains("cuda:0"));
  CHECK_THROWS_WITH(mul(on_gpu, on_cpu), Contains("mul") && Contains("cpu") && Contains("cuda:0"));
}
