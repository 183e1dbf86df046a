// What the CUDA tests share: host-drawn random inputs (fresh with Catch's
// --rng-seed), running a function on both devices with the same inputs and
// the same backward projection, and the element-by-element comparison of
// tests/compare.h. Header-only, so the CUDA suite needs no extra sources.
#pragma once

#include <catch2/catch.hpp>

#include <cstdint>
#include <functional>
#include <vector>

#include "../compare.h"
#include <pixgrad/core/ops.h>
#include <pixgrad/core/tensor.h>

namespace pixgrad::cuda_testing {

using namespace pixgrad::testing;

inline constexpr Device kGpu = Device::cuda(0);

using Function = std::function<Tensor(const std::vector<Tensor>&)>;

// A test's seed mixed with Catch's --rng-seed: the default run (seed 0) is
// reproducible, `--rng-seed time` draws fresh inputs, and Catch prints the
// seed it used so that a failure can be replayed.
inline uint64_t fresh_seed(uint64_t seed) {
  return seed + 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(Catch::rngSeed());
}

// Uniform float32 in [low, high) on the host, from a private generator so that
// tests do not disturb each other's random streams.
inline Tensor random_tensor(const Shape& shape, uint64_t seed, double low = -1, double high = 1) {
  Generator generator(fresh_seed(seed));
  return Tensor::uniform(shape, low, high, generator);
}

// A tensor whose first element sits `offset` floats (one unless given) past a
// 16-byte boundary: a view into a larger block, holding the values of
// `values`, on `device`. Kernels that move float4 packs must take their
// scalar path on it when the offset is not a multiple of 4.
inline Tensor unaligned_copy(const Tensor& values, Device device, int64_t offset = 1) {
  const int64_t n = values.numel();
  const Tensor block = Tensor::zeros({n + offset}, device);
  Tensor view = block.batch_slice(offset, n).reshape(values.shape());
  view.copy_(values);
  return view;
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

// Where the inputs of an evaluation start: at the allocator's 16-byte
// aligned blocks, or one float past them (views, as batch slices give).
enum class Layout { Aligned, Unaligned };

inline const char* to_string(Layout layout) { return layout == Layout::Aligned ? "aligned" : "unaligned (+1 float)"; }

// The output of f and the gradients of sum(f(x) * R) for every input x, R a
// random tensor fixed by `projection_seed` (the same on every device).
struct Evaluation {
  Tensor output;
  std::vector<Tensor> grads;
};

inline Evaluation evaluate(const Function& f, const std::vector<Tensor>& inputs, Device device,
                           Layout layout = Layout::Aligned, uint64_t projection_seed = 4242) {
  std::vector<Tensor> leaves;
  for (const Tensor& input : inputs) {
    if (layout == Layout::Aligned) {
      leaves.push_back(leaf_on(input, device));
    } else {
      Tensor view = unaligned_copy(input, device);
      REQUIRE(reinterpret_cast<uintptr_t>(view.raw_data()) % 16 == 4);
      leaves.push_back(view.set_requires_grad());
    }
  }
  Evaluation result;
  result.output = f(leaves);
  REQUIRE(result.output.device() == device);
  const Tensor projection = random_tensor(result.output.shape(), projection_seed).to(device);
  sum(mul(result.output, projection)).backward();
  for (const Tensor& leaf : leaves) result.grads.push_back(leaf.grad());
  return result;
}

// The CUDA evaluation against the CPU one: output and every gradient, element
// by element (the gradients with their own tolerance where given).
inline void check_matches(const Evaluation& gpu, const Evaluation& cpu, const Tolerance& tolerance,
                          const Tolerance* gradient_tolerance = nullptr) {
  {
    INFO("output " << shape_str(cpu.output.shape()));
    PIXGRAD_CHECK_CLOSE(gpu.output, cpu.output, tolerance);
  }
  REQUIRE(gpu.grads.size() == cpu.grads.size());
  for (size_t i = 0; i < cpu.grads.size(); ++i) {
    INFO("gradient of input " << i);
    REQUIRE(cpu.grads[i].defined());
    REQUIRE(gpu.grads[i].defined());
    CHECK(gpu.grads[i].is_cuda());
    PIXGRAD_CHECK_CLOSE(gpu.grads[i], cpu.grads[i], gradient_tolerance ? *gradient_tolerance : tolerance);
  }
}

// f on CUDA against f on the CPU, forward and backward, on host `inputs`,
// with the CUDA inputs aligned and then unaligned (the CPU result is
// computed once).
inline void check_against_cpu(const Function& f, const std::vector<Tensor>& inputs, const Tolerance& tolerance,
                              const Tolerance* gradient_tolerance = nullptr) {
  const Evaluation cpu = evaluate(f, inputs, Device::cpu());
  for (const Layout layout : {Layout::Aligned, Layout::Unaligned}) {
    INFO("CUDA inputs " << to_string(layout));
    check_matches(evaluate(f, inputs, kGpu, layout), cpu, tolerance, gradient_tolerance);
  }
}

}  // namespace pixgrad::cuda_testing
