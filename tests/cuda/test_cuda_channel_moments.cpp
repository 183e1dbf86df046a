// Channel moments on CUDA (kernels/channel_moments.h): the records the
// handwritten convolution writes beside its output, against that output;
// none from cuDNN or cuBLAS; batch_norm taking its statistics from them
// against batch_norm finding them itself, and against the CPU.
#include <catch2/catch.hpp>

#include <cmath>

#include <pixgrad/core/ops.h>
#include <pixgrad/kernels/cuda/batch_norm.h>
#include <pixgrad/kernels/cuda/conv2d.h>
#include "../moments_check.h"
#include "cuda_testing.h"

using namespace pixgrad;
using namespace pixgrad::cuda_testing;
using kernels::cuda::ConvImpl;

namespace {

class ImplScope {
 public:
  explicit ImplScope(ConvImpl impl) : conv_(kernels::cuda::conv_impl()), norm_(kernels::cuda::batch_norm_impl()) {
    kernels::cuda::set_conv_impl(impl);
    kernels::cuda::set_batch_norm_impl(kernels::cuda::BatchNormImpl::Handwritten);
  }
  ~ImplScope() {
    kernels::cuda::set_conv_impl(conv_);
    kernels::cuda::set_batch_norm_impl(norm_);
  }
  ImplScope(const ImplScope&) = delete;
  ImplScope& operator=(const ImplScope&) = delete;

 private:
  ConvImpl conv_;
  kernels::cuda::BatchNormImpl norm_;
};

struct MomentCase {
  const char* what;
  Shape input, weight;
  int64_t stride, padding;
  bool transposed, bias;
};

// pix2pix's layers at odd sizes; a deep narrow one (split-K); a bias (added
// in the kernel, so in the records); transposed convolutions whose 25 stride
// phases take two launches, and whose 1x1 kernel leaves phases without taps.
const MomentCase kCases[] = {
    {"encoder conv, odd planes, batch 3", {3, 5, 13, 11}, {7, 5, 4, 4}, 2, 1, false, false},
    {"bottleneck conv (split K)", {1, 256, 4, 4}, {512, 256, 4, 4}, 2, 1, false, false},
    {"wide conv, 64 channels, with a bias", {2, 3, 40, 36}, {64, 3, 4, 4}, 2, 1, false, true},
    {"decoder transposed conv, odd planes", {2, 64, 9, 7}, {64, 33, 4, 4}, 2, 1, true, false},
    {"transposed conv, stride 5", {1, 6, 5, 4}, {6, 9, 5, 5}, 5, 0, true, false},
    {"transposed conv, 1x1 kernel at stride 2", {2, 8, 5, 6}, {8, 40, 1, 1}, 2, 0, true, false},
};

Tensor convolve(const MomentCase& c, const Tensor& x, const Tensor& w, Tensor* moments) {
  const Tensor bias = c.bias ? random_tensor({w.size(c.transposed ? 1 : 0)}, 499).to(kGpu) : Tensor();
  return c.transposed ? conv_transpose2d(x, w, bias, {c.stride, c.padding}, moments)
                      : conv2d(x, w, bias, {c.stride, c.padding}, moments);
}

}  // namespace

TEST_CASE("cuda: the handwritten convolution writes its output's channel moments",
          "[cuda][channel_moments][small]") {
  const ImplScope scope(ConvImpl::Handwritten);
  uint64_t seed = 500;
  for (const MomentCase& c : kCases) {
    INFO(c.what);
    const Tensor x = random_tensor(c.input, ++seed, -1, 2).to(kGpu);
    const Tensor w = random_tensor(c.weight, ++seed).to(kGpu);
    Tensor moments;
    const Tensor y = convolve(c, x, w, &moments);
    testing::check_records_describe(moments, y);
    // The same records, bit for bit, run to run.
    Tensor again;
    convolve(c, x, w, &again);
    CHECK(again.to_double_vector() == moments.to_double_vector());
  }
}

TEST_CASE("cuda: cuDNN and cuBLAS convolutions give no moments", "[cuda][channel_moments]") {
  for (ConvImpl impl : {ConvImpl::Cudnn, ConvImpl::Cublas}) {
    const ImplScope scope(impl);
    const Tensor x = random_tensor({1, 4, 8, 8}, 601).to(kGpu);
    Tensor moments = Tensor::zeros({1});
    conv2d(x, random_tensor({6, 4, 4, 4}, 602).to(kGpu), Tensor(), {2, 1}, &moments);
    CHECK_FALSE(moments.defined());
    moments = Tensor::zeros({1});
    conv_transpose2d(x, random_tensor({4, 6, 4, 4}, 603).to(kGpu), Tensor(), {2, 1}, &moments);
    CHECK_FALSE(moments.defined());
  }
}

TEST_CASE("cuda: moments that count other than the input's values give NaN statistics", "[cuda][channel_moments]") {
  const ImplScope scope(ConvImpl::Handwritten);
  const Tensor w = random_tensor({3, 2, 3, 3}, 611).to(kGpu);
  Tensor larger_moments;
  conv2d(random_tensor({2, 2, 9, 9}, 612).to(kGpu), w, Tensor(), {1, 1}, &larger_moments);
  const Tensor y = conv2d(random_tensor({1, 2, 8, 8}, 613).to(kGpu), w, Tensor(), {1, 1});
  const Tensor out = batch_norm(y, Tensor(), Tensor(), Tensor(), Tensor(), {}, {}, Tensor(), larger_moments);
  for (double v : out.to_double_vector()) REQUIRE(std::isnan(v));
}

TEST_CASE("cuda: batch_norm from its input's moments matches batch_norm from the input and the CPU",
          "[cuda][channel_moments]") {
  const ImplScope scope(ConvImpl::Handwritten);
  uint64_t seed = 700;
  for (const MomentCase& c : kCases) {
    for (const BatchNormEpilogue& after : {BatchNormEpilogue{}, BatchNormEpilogue::leaky_relu(0.2)}) {
      INFO(c.what << (after.activation == NormActivation::None ? "" : ", leaky ReLU fused"));
      const Tensor x = random_tensor(c.input, ++seed, -1, 2).to(kGpu);
      const Tensor w = random_tensor(c.weight, ++seed).to(kGpu);
      Tensor moments;
      const Tensor y = convolve(c, x, w, &moments);
      REQUIRE(moments.defined());
      const int64_t channels = y.size(1);
      const Tensor gamma = random_tensor({channels}, ++seed, 0.5, 1.5), beta = random_tensor({channels}, ++seed);
      struct Run {
        Tensor out, running_mean, running_var;
      };
      const auto normalise = [&](const Tensor& input, Device device, const Tensor& given) {
        Run r{Tensor(), Tensor::zeros({channels}, device), Tensor::ones({channels}, device)};
        r.out = batch_norm(input, gamma.to(device), beta.to(device), r.running_mean, r.running_var, {}, after,
                           Tensor(), given);
        return r;
      };
      const Run with = normalise(y, kGpu, moments), without = normalise(y, kGpu, Tensor());
      const Run cpu = normalise(y.to(Device::cpu()), Device::cpu(), Tensor());
      testing::check_within_roundings(with.out, without.out, 1.2e-7, 1.0);
      testing::check_within_roundings(with.running_mean, without.running_mean, 1.2e-7, 0.1);
      testing::check_within_roundings(with.running_var, without.running_var, 1.2e-7, 0.1);
      CHECK(compare(with.out, cpu.out, kNormTolerance).passed());
      CHECK(compare(with.running_var, cpu.running_var, kNormTolerance).passed());
    }
  }
}
