// Every vectorised CUDA kernel (float4 packs when its pointers are 16-byte
// aligned, one float at a time otherwise) called directly on raw device
// pointers, once 16-byte aligned and once one float past alignment, against
// the CPU kernel on the same values. The arrays sit between guard floats that
// must come back untouched, so a pack or tail that strays past either end of
// its array is caught too. (The ops' views are covered by the other files:
// check_against_cpu runs every op on unaligned inputs as well.)
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cuda_testing.h"
#include <pixgrad/core/cuda_info.h>
#include <pixgrad/kernels/cpu/adam.h>
#include <pixgrad/kernels/cpu/dropout.h>
#include <pixgrad/kernels/cpu/elementwise.h>
#include <pixgrad/kernels/cpu/random.h>
#include <pixgrad/kernels/cpu/reduce.h>
#include <pixgrad/kernels/cpu/sgd.h>
#include <pixgrad/kernels/cuda/dropout.h>
#include <pixgrad/kernels/cuda/elementwise.h>
#include <pixgrad/kernels/cuda/optim.h>
#include <pixgrad/kernels/cuda/random.h>
#include <pixgrad/kernels/cuda/reduce.h>

using namespace pixgrad;
using namespace pixgrad::cuda_testing;
namespace cpu = pixgrad::kernels::cpu;
namespace device = pixgrad::kernels::cuda;
using cpu::host;
using device::gpu;

namespace {

constexpr int64_t kGuard = 4;  // floats before and after each array
constexpr float kSentinel = -12345.5f;

// n floats on the device starting `shift` floats past a 16-byte boundary,
// between guards. The allocator's blocks are 512-byte aligned, so the array
// starts at block + kGuard + shift floats.
class DeviceArray {
 public:
  DeviceArray(const std::vector<float>& values, int64_t shift) : n_(static_cast<int64_t>(values.size())) {
    std::vector<float> host(static_cast<size_t>(n_ + 2 * kGuard + 1), kSentinel);
    std::copy(values.begin(), values.end(), host.begin() + kGuard + shift);
    block_ = Tensor::from_vector(host, {static_cast<int64_t>(host.size())}).to(kGpu);
    pointer_ = block_.data<float>() + kGuard + shift;
    shift_ = shift;
    REQUIRE(reinterpret_cast<uintptr_t>(pointer_) % 16 == static_cast<uintptr_t>(4 * shift));
  }
  float* get() const { return pointer_; }

  // The array's values, after checking that the guards were not written.
  std::vector<float> values() const {
    synchronize(kGpu);
    const std::vector<float> host = block_.to_vector();
    int64_t touched = 0;
    for (int64_t i = 0; i < static_cast<int64_t>(host.size()); ++i) {
      const bool inside = i >= kGuard + shift_ && i < kGuard + shift_ + n_;
      if (!inside && host[static_cast<size_t>(i)] != kSentinel) ++touched;
    }
    CHECK(touched == 0);
    return std::vector<float>(host.begin() + kGuard + shift_, host.begin() + kGuard + shift_ + n_);
  }

 private:
  int64_t n_ = 0, shift_ = 0;
  Tensor block_;
  float* pointer_ = nullptr;
};

std::vector<float> random_values(int64_t n, uint64_t seed, double low = -2, double high = 2) {
  return random_tensor({n}, seed, low, high).to_vector();
}

std::vector<double> as_double(const std::vector<float>& values) { return {values.begin(), values.end()}; }

void check_close(const std::vector<float>& actual, const std::vector<float>& expected, const Tolerance& tolerance) {
  const Comparison comparison = compare(as_double(actual), as_double(expected), tolerance);
  INFO(comparison.describe());
  CHECK(comparison.passed());
}

// Sizes: a prime over a million (no launch shape divides it, every tail
// length occurs somewhere), a few elements, and one pack plus a tail.
const int64_t kSizes[] = {1000003, 7, 5};
const int64_t kShifts[] = {0, 1};

}  // namespace

TEST_CASE("elementwise kernels give the CPU's values on aligned and unaligned arrays, and stay inside them",
          "[cuda][elementwise][unaligned]") {
  using pixgrad::kernels::BinaryOp;
  using pixgrad::kernels::UnaryOp;
  for (const int64_t n : kSizes) {
    const std::vector<float> x = random_values(n, 11), y_grad = random_values(n, 12), b = random_values(n, 13, 0.5, 2);
    for (const int64_t shift : kShifts) {
      INFO("n " << n << ", shift " << shift << " float(s)");
      for (const UnaryOp op : {UnaryOp::Relu, UnaryOp::LeakyRelu, UnaryOp::Tanh, UnaryOp::Sigmoid,
                               UnaryOp::Softplus, UnaryOp::Abs, UnaryOp::Neg}) {
        INFO("unary op " << static_cast<int>(op));
        std::vector<float> y(x.size()), grad(x.size());
        cpu::unary_forward(host, op, x.data(), y.data(), n, 0.2);
        // The backward kernels read y or x, whichever the derivative is written in.
        const bool reads_output = pixgrad::kernels::unary_reads_output(op);
        cpu::unary_backward(host, op, reads_output ? y.data() : x.data(), y_grad.data(), grad.data(), n, 0.2);
        const DeviceArray dx(x, shift), dy(std::vector<float>(x.size()), shift), dgy(y_grad, shift),
            dgrad(std::vector<float>(x.size()), shift);
        device::unary_forward(gpu, op, dx.get(), dy.get(), n, 0.2);
        check_close(dy.values(), y, kElementwiseTolerance);
        // Backward from the CPU's forward output, so that only the backward kernel is compared.
        const DeviceArray dy_cpu(y, shift);
        device::unary_backward(gpu, op, reads_output ? dy_cpu.get() : dx.get(), dgy.get(), dgrad.get(), n, 0.2);
        check_close(dgrad.values(), grad, kElementwiseTolerance);
      }
      for (const BinaryOp op : {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div}) {
        INFO("binary op " << static_cast<int>(op));
        std::vector<float> out(x.size()), scalar_out(x.size());
        cpu::binary_forward(host, op, x.data(), b.data(), out.data(), n);
        cpu::scalar_forward(host, op, x.data(), 0.3, scalar_out.data(), n);
        const DeviceArray dx(x, shift), db(b, shift), dout(std::vector<float>(x.size()), shift),
            dscalar(std::vector<float>(x.size()), shift);
        device::binary_forward(gpu, op, dx.get(), db.get(), dout.get(), n);
        device::scalar_forward(gpu, op, dx.get(), 0.3, dscalar.get(), n);
        check_close(dout.values(), out, kElementwiseTolerance);
        check_close(dscalar.values(), scalar_out, kElementwiseTolerance);
      }
      {
        INFO("fill and accumulate (in place)");
        std::vector<float> filled(x.size()), summed = x;
        cpu::fill(host, filled.data(), n, -0.75);
        cpu::accumulate(host, summed.data(), b.data(), n);
        const DeviceArray dfill(x, shift), dsum(x, shift), db(b, shift);
        device::fill(gpu, dfill.get(), n, -0.75);
        device::accumulate(gpu, dsum.get(), db.get(), n);
        check_close(dfill.values(), filled, {});
        check_close(dsum.values(), summed, {});
      }
      {
        INFO("fill_from_scalar (the scalar on the device)");
        const DeviceArray dscalar({2.5f}, 0), dout(x, shift);
        device::fill_from_scalar(gpu, dout.get(), n, dscalar.get(), 1.0 / 3);
        const std::vector<float> expected(x.size(), static_cast<float>(2.5 * (1.0 / 3)));
        check_close(dout.values(), expected, kElementwiseTolerance);
      }
    }
  }
}

TEST_CASE("per-channel kernels give the CPU's values on aligned and unaligned planes", "[cuda][unaligned]") {
  // [N, C, S] with S a multiple of 4 (the float4 path when aligned) and not.
  struct Planes {
    int64_t batch, channels, spatial;
  };
  for (const Planes& planes : {Planes{2, 3, 64}, Planes{3, 5, 77}, Planes{1, 7, 4}}) {
    const auto [batch, channels, spatial] = planes;
    const int64_t n = batch * channels * spatial;
    const std::vector<float> x = random_values(n, 21), bias = random_values(channels, 22);
    for (const int64_t shift : kShifts) {
      INFO("[" << batch << ", " << channels << ", " << spatial << "], shift " << shift);
      std::vector<float> added = x, sums(static_cast<size_t>(channels));
      cpu::add_per_channel(host, added.data(), bias.data(), batch, channels, spatial);
      cpu::sum_per_channel(host, x.data(), batch, channels, spatial, sums.data());
      const DeviceArray dadd(x, shift), dx(x, shift), dbias(bias, 0), dsums(std::vector<float>(sums.size()), 0);
      device::add_per_channel(gpu, dadd.get(), dbias.get(), batch, channels, spatial);
      device::sum_per_channel(gpu, dx.get(), batch, channels, spatial, dsums.get());
      check_close(dadd.values(), added, {});
      double magnitude = 0;
      for (const float v : x) magnitude += std::abs(v);
      check_close(dsums.values(), sums, Tolerance{1e-5, 0, 1e-6 * magnitude});
    }
  }
}

TEST_CASE("reduction kernels give the CPU's values on aligned and unaligned arrays", "[cuda][reduction][unaligned]") {
  for (const int64_t n : kSizes) {
    const std::vector<float> a = random_values(n, 31), b = random_values(n, 32);
    double magnitude = 0, difference = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      magnitude += std::abs(a[i]);
      difference += std::abs(a[i] - b[i]);
    }
    for (const int64_t shift : kShifts) {
      INFO("n " << n << ", shift " << shift);
      const DeviceArray da(a, shift), db(b, shift), dsum({0.0f}, 0), dl1({0.0f}, 0), dscalar({1.5f}, 0),
          dgrad(std::vector<float>(a.size()), shift);
      device::sum(gpu, da.get(), n, dsum.get());
      device::sum_abs_difference(gpu, da.get(), db.get(), n, 1.0, dl1.get());
      device::sign_of_difference(gpu, da.get(), db.get(), dscalar.get(), 0.25, dgrad.get(), n);
      float sum = 0, l1 = 0;
      cpu::sum(host, a.data(), n, &sum);
      cpu::sum_abs_difference(host, a.data(), b.data(), n, 1.0, &l1);
      check_close(dsum.values(), {sum}, Tolerance{1e-5, 0, 1e-6 * magnitude});
      check_close(dl1.values(), {l1}, Tolerance{1e-5, 0, 1e-6 * difference});
      std::vector<float> grad(a.size());
      const float grad_scalar = 1.5f;
      cpu::sign_of_difference(host, a.data(), b.data(), &grad_scalar, 0.25, grad.data(), n);
      check_close(dgrad.values(), grad, {});
    }
  }
}

TEST_CASE("Philox fills and dropout masks written to unaligned arrays equal the CPU's", "[cuda][random][unaligned]") {
  for (const int64_t n : kSizes) {
    for (const int64_t shift : kShifts) {
      INFO("n " << n << ", shift " << shift);
      const std::vector<float> zeros(static_cast<size_t>(n));
      std::vector<float> uniform(zeros.size()), normal(zeros.size()), mask(zeros.size());
      cpu::fill_uniform(host, uniform.data(), n, 99, 3, -2.0, 3.0);
      cpu::fill_normal(host, normal.data(), n, 99, 3, 0.5, 2.0);
      cpu::dropout_mask(host, mask.data(), n, 0.3, 99, 3);
      const DeviceArray duniform(zeros, shift), dnormal(zeros, shift), dmask(zeros, shift);
      device::fill_uniform(gpu, duniform.get(), n, 99, 3, -2.0, 3.0);
      device::fill_normal(gpu, dnormal.get(), n, 99, 3, 0.5, 2.0);
      device::dropout_mask(gpu, dmask.get(), n, 0.3, 99, 3);
      check_close(duniform.values(), uniform, {});  // bit for bit
      check_close(dmask.values(), mask, {});
      check_close(dnormal.values(), normal, kElementwiseTolerance);  // logf, cosf: last bits
    }
  }
}

TEST_CASE("Adam and SGD kernels update unaligned arrays like the CPU", "[cuda][optim][unaligned]") {
  for (const int64_t n : kSizes) {
    const std::vector<float> param = random_values(n, 41), grad = random_values(n, 42),
                             exp_avg = random_values(n, 43, -0.1, 0.1), exp_avg_sq = random_values(n, 44, 0, 0.01);
    for (const int64_t shift : kShifts) {
      INFO("n " << n << ", shift " << shift);
      const pixgrad::kernels::AdamStep adam{0.01, 0.5, 0.999, 1e-8, 0.1, 3, pixgrad::kernels::EpsilonPlacement::PyTorch};
      std::vector<float> p = param, m = exp_avg, v = exp_avg_sq;
      cpu::adam_update(host, adam, p.data(), grad.data(), m.data(), v.data(), n, static_cast<float*>(nullptr));
      const DeviceArray dp(param, shift), dg(grad, shift), dm(exp_avg, shift), dv(exp_avg_sq, shift);
      device::adam_update(gpu, adam, dp.get(), dg.get(), dm.get(), dv.get(), n);
      check_close(dp.values(), p, kOptimizerTolerance);
      check_close(dm.values(), m, kOptimizerTolerance);
      check_close(dv.values(), v, kOptimizerTolerance);

      const pixgrad::kernels::SgdStep sgd{0.05, 0.9, 0.01};
      std::vector<float> sp = param, buffer = exp_avg;
      cpu::sgd_update(host, sgd, sp.data(), grad.data(), buffer.data(), n, static_cast<float*>(nullptr));
      const DeviceArray dsp(param, shift), dbuffer(exp_avg, shift);
      device::sgd_update(gpu, sgd, dsp.get(), dg.get(), dbuffer.get(), n);
      check_close(dsp.values(), sp, kOptimizerTolerance);
      check_close(dbuffer.values(), buffer, kOptimizerTolerance);
    }
  }
}

TEST_CASE("one Adam launch over many aligned and unaligned arrays gives each the CPU's bits and stays inside them",
          "[cuda][optim][unaligned][multi_tensor]") {
  // Sizes around the chunk (kernels/multi_tensor_adam.h), a prime over a
  // million, and small tails; every other array one float past alignment
  // (so its slot goes one float at a time), one array empty.
  const int64_t chunk = pixgrad::kernels::kAdamChunk;
  const std::vector<int64_t> sizes = {1, 5, 7, chunk - 1, chunk, chunk + 1, 3 * chunk + 3, 1000003, 0, 4, 129};
  const pixgrad::kernels::AdamStep adam{0.01, 0.5, 0.999, 1e-8, 0.1, 3, pixgrad::kernels::EpsilonPlacement::PyTorch};
  std::vector<std::vector<float>> expected_p, expected_m, expected_v;
  std::vector<DeviceArray> dp, dg, dm, dv;
  std::vector<pixgrad::kernels::AdamTensor> tensors;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const int64_t n = sizes[i], shift = static_cast<int64_t>(i % 2);
    const uint64_t seed = 500 + 10 * i;
    const std::vector<float> param = random_values(n, seed), grad = random_values(n, seed + 1),
                             exp_avg = random_values(n, seed + 2, -0.1, 0.1),
                             exp_avg_sq = random_values(n, seed + 3, 0, 0.01);
    std::vector<float> p = param, m = exp_avg, v = exp_avg_sq;
    cpu::adam_update(host, adam, p.data(), grad.data(), m.data(), v.data(), n, static_cast<float*>(nullptr));
    expected_p.push_back(p);
    expected_m.push_back(m);
    expected_v.push_back(v);
    dp.emplace_back(param, shift);
    dg.emplace_back(grad, shift);
    dm.emplace_back(exp_avg, shift);
    dv.emplace_back(exp_avg_sq, shift);
    tensors.push_back({dp.back().get(), dg.back().get(), dm.back().get(), dv.back().get(), n});
  }
  DeviceArray flag(std::vector<float>{0.0f}, 0);
  device::adam_update_many(gpu, adam, tensors, flag.get());
  for (size_t i = 0; i < sizes.size(); ++i) {
    INFO("array " << i << ": n " << sizes[i] << ", shift " << i % 2);
    check_close(dp[i].values(), expected_p[i], kOptimizerTolerance);
    check_close(dm[i].values(), expected_m[i], kOptimizerTolerance);
    check_close(dv[i].values(), expected_v[i], kOptimizerTolerance);
  }
  CHECK(flag.values()[0] == 0.0f);  // every gradient finite
}
