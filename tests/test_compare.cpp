// The element-by-element comparison (tests/compare.h) and the tolerances of
// the CUDA suite, checked where they can be: on the CPU. A tolerance is only
// as good as the two things it must separate, so each is shown to pass
// float32 against float64 with room to spare (the GPU's float32 rounds
// differently from the CPU's, by about as much again), and the convolution
// tolerance to fail operands rounded to TF32, as tensor cores take them.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "compare.h"
#include <pixgrad/core/ops.h>
#include "elementwise_cases.h"
#include "gradcheck.h"
#include <pixgrad/kernels/cpu/conv2d.h>
#include <pixgrad/kernels/cpu/conv2d_reference.h>

using namespace pixgrad;
using namespace pixgrad::testing;

namespace {

// Round to TF32 (10 explicit mantissa bits), to nearest even, as cuBLAS and
// cuDNN convert float32 operands for tensor cores.
float round_to_tf32(float value) {
  uint32_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  bits += 0xFFFu + ((bits >> 13) & 1u);
  bits &= ~0x1FFFu;
  std::memcpy(&value, &bits, sizeof bits);
  return value;
}

std::vector<float> random_floats(size_t n, uint64_t seed) {
  return testing::random_tensor({static_cast<int64_t>(n)}, seed, DType::Float32, -1, 1).to_vector();
}

std::vector<double> widen(const std::vector<float>& values) { return {values.begin(), values.end()}; }

// The fixed R of the projections below.
Tensor projection_for(const Shape& shape) { return testing::random_tensor(shape, 4242, DType::Float32); }

// A function's output and the gradients of sum(f(x) * R) for every input, R
// fixed, computed in `dtype` on the CPU and returned as float64.
struct Evaluation {
  std::vector<double> output;
  std::vector<std::vector<double>> grads;
};

using Function = std::function<Tensor(const std::vector<Tensor>&)>;

Evaluation evaluate_in(DType dtype, const Function& f, const std::vector<Tensor>& inputs) {
  std::vector<Tensor> leaves;
  for (const Tensor& input : inputs) leaves.push_back(input.to(dtype).clone().set_requires_grad());
  const Tensor output = f(leaves);
  const Tensor projection = projection_for(output.shape()).to(dtype);
  sum(mul(output, projection)).backward();
  Evaluation result{output.to_double_vector(), {}};
  for (const Tensor& leaf : leaves) result.grads.push_back(leaf.grad().to_double_vector());
  return result;
}

// f in float32 against f in float64: output and every gradient must pass
// `tolerance` (the gradients `gradient_tolerance`, where given).
void check_float32_against_float64(const Function& f, const std::vector<Tensor>& inputs, const Tolerance& tolerance,
                                   const Tolerance* gradient_tolerance = nullptr) {
  const Evaluation single = evaluate_in(DType::Float32, f, inputs);
  const Evaluation reference = evaluate_in(DType::Float64, f, inputs);
  {
    const Comparison comparison = compare(single.output, reference.output, tolerance);
    INFO("output: " << comparison.describe());
    CHECK(comparison.passed());
  }
  for (size_t i = 0; i < reference.grads.size(); ++i) {
    const Comparison comparison =
        compare(single.grads[i], reference.grads[i], gradient_tolerance ? *gradient_tolerance : tolerance);
    INFO("gradient of input " << i << ": " << comparison.describe());
    CHECK(comparison.passed());
  }
}

// The CUDA tolerances must hold float32 against float64 four times over.
constexpr double kRoom = 0.25;

}  // namespace

TEST_CASE("compare holds each element to its own magnitude, an RMS floor and an absolute floor", "[compare]") {
  const std::vector<double> expected{100, 1, 0, -0.01};  // rms ~50
  // 1e-3 relative: fine for every element when the floor is generous...
  CHECK(compare({100.1, 1.001, 0, -0.01001}, expected, {1e-3, 0, 0}).passed());
  // ...but 2e-3 off on the small element fails relative 1e-3 alone, however large its neighbour.
  const Comparison small_off = compare({100, 1, 0, -0.01002}, expected, {1e-3, 0, 0});
  CHECK_FALSE(small_off.passed());
  CHECK(small_off.failures == 1);
  CHECK(small_off.worst == 3);
  CHECK(small_off.worst_ratio == Approx(2).epsilon(1e-6));
  // The RMS floor excuses an absolute error near zero up to floor * rms.
  CHECK(compare({100, 1, 1e-4, -0.01}, expected, {0, 3e-6, 0}).passed());
  CHECK_FALSE(compare({100, 1, 2e-4, -0.01}, expected, {0, 3e-6, 0}).passed());
  CHECK(compare({100, 1, 2e-4, -0.01}, expected, {0, 0, 2e-4}).passed());
  // NaN and infinities pass only against themselves.
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  CHECK(compare({nan, inf, -inf}, {nan, inf, -inf}, {}).passed());
  CHECK_FALSE(compare({nan}, {1}, {1, 1, 1}).passed());
  CHECK_FALSE(compare({1}, {nan}, {1, 1, 1}).passed());
  CHECK_FALSE(compare({inf}, {-inf}, {1, 1, 1}).passed());
  CHECK_FALSE(compare({1e300}, {inf}, {1, 1, 1}).passed());
  // Sizes and shapes must agree.
  CHECK_FALSE(compare(std::vector<double>{1, 2}, std::vector<double>{1}, {1, 1, 1}).passed());
  CHECK_FALSE(compare(Tensor::zeros({2, 3}), Tensor::zeros({3, 2}), {1, 1, 1}).passed());
  CHECK_THAT(compare(Tensor::zeros({2, 3}), Tensor::zeros({3, 2}), {}).describe(), Catch::Contains("shapes differ"));
}

TEST_CASE("the convolution tolerance passes float32 in another summation order and fails TF32-rounded operands",
          "[compare][conv]") {
  using kernels::Conv2dGeometry;
  using kernels::cpu::host;
  // Layers of the presets with the longest sums of each pass, smaller in
  // batch or width where that keeps the sum length: the chainer stem's
  // weight gradient (65,536 products at batch 1), the innermost 512-channel
  // layers (8,192), a decoder-sized one and the 3-channel input layer.
  const Conv2dGeometry layers[] = {
      {1, 12, 256, 256, 16, 3, 3, 1, 1},  // stem: weight gradient sums over 256 x 256 pixels
      {4, 512, 4, 4, 512, 4, 4, 2, 1},    // innermost: forward and data gradient sum 512 x 16
      {2, 256, 16, 16, 128, 4, 4, 2, 1},  // a decoder-sized level
      {4, 3, 128, 128, 64, 4, 4, 2, 1},   // the input layer
  };
  for (const Conv2dGeometry& g : layers) {
    INFO("conv " << g.batch << "x" << g.in_channels << "x" << g.in_height << "x" << g.in_width << " -> "
                 << g.out_channels << ", kernel " << g.kernel_h << ", stride " << g.stride);
    const size_t inputs = static_cast<size_t>(g.batch * g.in_channels * g.in_height * g.in_width);
    const size_t weights = static_cast<size_t>(g.out_channels * g.in_channels * g.kernel_h * g.kernel_w);
    const size_t outputs = static_cast<size_t>(g.batch * g.out_channels * g.out_height() * g.out_width());
    const std::vector<float> x = random_floats(inputs, 1), w = random_floats(weights, 2), dy = random_floats(outputs, 3);
    std::vector<float> x_tf32 = x, w_tf32 = w, dy_tf32 = dy;
    for (float& v : x_tf32) v = round_to_tf32(v);
    for (float& v : w_tf32) v = round_to_tf32(v);
    for (float& v : dy_tf32) v = round_to_tf32(v);
    const std::vector<double> xd = widen(x), wd = widen(w), dyd = widen(dy);

    // One pass: the blocked GEMM (float32), the plain serial loop (float32,
    // another order), the plain loop in float64, and the GEMM on TF32 operands.
    const auto check_pass = [&](const char* pass, size_t n, auto&& fast, auto&& plain) {
      INFO(pass);
      std::vector<float> gemm(n), serial(n), tf32(n);
      std::vector<double> exact(n);
      fast(x.data(), w.data(), dy.data(), gemm.data());
      plain(x.data(), w.data(), dy.data(), serial.data());
      plain(xd.data(), wd.data(), dyd.data(), exact.data());
      fast(x_tf32.data(), w_tf32.data(), dy_tf32.data(), tf32.data());
      const Comparison orders = compare(widen(gemm), widen(serial), kConvTolerance);
      const Comparison against_exact = compare(widen(gemm), exact, kConvTolerance.scaled(kRoom));
      const Comparison rounded = compare(widen(tf32), widen(gemm), kConvTolerance);
      INFO("float32 GEMM against the serial float32 loop: " << orders.describe());
      INFO("float32 GEMM against float64: " << against_exact.describe());
      INFO("TF32 operands against float32: " << rounded.describe());
      CHECK(orders.passed());
      CHECK(against_exact.passed());
      CHECK_FALSE(rounded.passed());
      // Not a stray element: TF32 misses on a good part of the tensor.
      CHECK(rounded.failures > rounded.elements / 20);
    };
    check_pass(
        "forward", outputs,
        [&](const float* in, const float* weight, const float*, float* out) {
          kernels::cpu::conv2d_forward(host, g, in, weight, nullptr, out);
        },
        [&](const auto* in, const auto* weight, const auto*, auto* out) {
          kernels::cpu::conv2d_forward_reference(g, in, weight, decltype(in)(nullptr), out);
        });
    check_pass(
        "data gradient", inputs,
        [&](const float*, const float* weight, const float* grad, float* out) {
          kernels::cpu::conv2d_backward_data(host, g, grad, weight, out);
        },
        [&](const auto*, const auto* weight, const auto* grad, auto* out) {
          kernels::cpu::conv2d_backward_data_reference(g, grad, weight, out);
        });
    check_pass(
        "weight gradient", weights,
        [&](const float* in, const float*, const float* grad, float* out) {
          kernels::cpu::conv2d_backward_weight(host, g, in, grad, out, nullptr);
        },
        [&](const auto* in, const auto*, const auto* grad, auto* out) {
          kernels::cpu::conv2d_backward_weight_reference(g, in, grad, out, decltype(out)(nullptr));
        });
  }
}

TEST_CASE("the elementwise tolerance holds float32 against float64 with room, saturated tails included",
          "[compare][elementwise]") {
  for (const auto& [name, op] : unary_op_cases()) {
    for (const double range : {4.0, 40.0}) {
      INFO(name << " on [-" << range << ", " << range << ")");
      const Function f = [op = op](const std::vector<Tensor>& in) { return op(in[0]); };
      check_float32_against_float64(f, {testing::random_tensor({100003}, 11, DType::Float32, -range, range)},
                                    kElementwiseTolerance.scaled(kRoom));
    }
  }
  INFO("a chain of ops, gradients summed over several uses");
  const Function chain = [](const std::vector<Tensor>& in) { return elementwise_chain(in[0], in[1]); };
  check_float32_against_float64(chain,
                                {testing::random_tensor({100003}, 12, DType::Float32, -3, 3),
                                 testing::random_tensor({100003}, 13, DType::Float32, -3, 3)},
                                kElementwiseTolerance.scaled(kRoom));
}

TEST_CASE("the batch-norm tolerance holds float32 against float64 with room, two values per channel included",
          "[compare][batch_norm]") {
  const Shape shapes[] = {{3, 5, 7, 11}, {1, 512, 2, 2}, {4, 7, 13, 9}, {8, 3, 64, 64}};
  uint64_t seed = 20;
  for (const Shape& shape : shapes) {
    for (const bool training : {true, false}) {
      INFO(shape_str(shape) << (training ? ", training" : ", eval"));
      const int64_t channels = shape[1];
      const Tensor running_mean = testing::random_tensor({channels}, ++seed, DType::Float32, -0.5, 0.5);
      const Tensor running_var = testing::random_tensor({channels}, ++seed, DType::Float32, 0.5, 2);
      const Function f = [&](const std::vector<Tensor>& in) {
        Tensor mean = running_mean.to(in[0].dtype()).clone(), var = running_var.to(in[0].dtype()).clone();
        return batch_norm(in[0], in[1], in[2], mean, var, {training, 0.1, 1e-5});
      };
      const std::vector<Tensor> inputs{testing::random_tensor(shape, ++seed, DType::Float32, -2, 3),
                                       testing::random_tensor({channels}, ++seed, DType::Float32, 0.5, 1.5),
                                       testing::random_tensor({channels}, ++seed, DType::Float32, -1, 1)};
      const Tolerance gradient_tolerance = kNormTolerance.plus_absolute(batch_norm_gradient_floor(
          inputs[0], projection_for(shape), inputs[1], running_var, training, 1e-5));
      const Tolerance room = gradient_tolerance.scaled(kRoom);
      check_float32_against_float64(f, inputs, kNormTolerance.scaled(kRoom), &room);
    }
  }
  // Two values per channel of opposite signs, as the CUDA test draws them
  // (tests/cuda/test_cuda_norm_dropout.cpp).
  std::vector<float> values = testing::random_tensor({2, 64, 1, 1}, 40, DType::Float32, 0.5, 1.5).to_vector();
  for (size_t i = 64; i < 128; ++i) values[i] = -values[i];
  const Function f = [](const std::vector<Tensor>& in) {
    return batch_norm(in[0], in[1], in[2], Tensor(), Tensor(), {true, 0.1, 1e-5});
  };
  const std::vector<Tensor> inputs{Tensor::from_vector(values, {2, 64, 1, 1}),
                                   testing::random_tensor({64}, 41, DType::Float32, 0.5, 1.5),
                                   testing::random_tensor({64}, 42, DType::Float32, -1, 1)};
  const Tolerance gradient_tolerance = kNormTolerance.plus_absolute(
      batch_norm_gradient_floor(inputs[0], projection_for({2, 64, 1, 1}), inputs[1], Tensor(), true, 1e-5));
  const Tolerance room = gradient_tolerance.scaled(kRoom);
  check_float32_against_float64(f, inputs, kNormTolerance.scaled(kRoom), &room);
  // Without the floor the comparison would hold rounding noise to the size of
  // a gradient that is zero up to eps: it must not pass.
  const Evaluation single = evaluate_in(DType::Float32, f, inputs);
  const Evaluation reference = evaluate_in(DType::Float64, f, inputs);
  CHECK_FALSE(compare(single.grads[0], reference.grads[0], kNormTolerance).passed());
}
