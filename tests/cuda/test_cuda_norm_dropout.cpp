// batch_norm on CUDA (every implementation) against the CPU op: training with
// and without running statistics, eval, with and without affine parameters,
// gradients for x, weight and bias; with dropout and an activation fused
// into it. Dropout masks and Philox draws made on the device against the
// host's.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "cuda_testing.h"
#include <pixgrad/core/ops.h>
#include <pixgrad/kernels/cuda/batch_norm.h>

using namespace pixgrad;
using namespace pixgrad::cuda_testing;
using kernels::cuda::BatchNormImpl;

namespace {

// Every comparison uses kNormTolerance (tests/compare.h), per element.

const BatchNormImpl kImpls[] = {BatchNormImpl::Handwritten, BatchNormImpl::Cudnn};

const char* impl_name(BatchNormImpl impl) { return impl == BatchNormImpl::Handwritten ? "handwritten" : "cudnn"; }

// Selects an implementation for the scope; puts back the one in use before.
class BatchNormImplScope {
 public:
  explicit BatchNormImplScope(BatchNormImpl impl) : saved_(kernels::cuda::batch_norm_impl()) {
    kernels::cuda::set_batch_norm_impl(impl);
  }
  ~BatchNormImplScope() { kernels::cuda::set_batch_norm_impl(saved_); }
  BatchNormImplScope(const BatchNormImplScope&) = delete;
  BatchNormImplScope& operator=(const BatchNormImplScope&) = delete;

 private:
  BatchNormImpl saved_;
};

enum class Mode { TrainingTracked, TrainingUntracked, EvalTracked, EvalUntracked };

const char* mode_name(Mode mode) {
  switch (mode) {
    case Mode::TrainingTracked: return "training, running statistics updated";
    case Mode::TrainingUntracked: return "training, no running statistics";
    case Mode::EvalTracked: return "eval, running statistics";
    case Mode::EvalUntracked: return "eval, no running statistics (batch statistics)";
  }
  return "";
}

bool tracks(Mode mode) { return mode == Mode::TrainingTracked || mode == Mode::EvalTracked; }

struct NormCase {
  Shape shape;
  double momentum, eps;
};

// The U-Net's extremes (a 16-image batch of full frames, the 512-channel 2x2
// bottleneck), odd sizes, and two values per channel.
const NormCase kCases[] = {
    {{2, 64, 1, 1}, 0.1, 1e-5}, {{1, 5, 2, 1}, 0.1, 2e-5},     {{3, 5, 7, 11}, 0.3, 1e-5},
    {{1, 512, 2, 2}, 0.1, 2e-5}, {{4, 7, 13, 9}, 0.1, 1e-5},    {{16, 3, 256, 256}, 0.1, 1e-5},
};

// Input values for a case. With two values per channel, a pair that happens
// to be close makes the variance tiny and the gradient an amplified rounding
// error; there, each channel's two values get opposite signs, |v| in [0.5, 1.5).
Tensor norm_input(const Shape& shape, uint64_t seed) {
  const int64_t batch = shape[0], channels = shape[1];
  const int64_t spatial = shape_numel(shape) / (batch * channels);
  if (batch * spatial != 2) return random_tensor(shape, seed, -2, 3);
  std::vector<float> values = random_tensor(shape, seed, 0.5, 1.5).to_vector();
  for (int64_t c = 0; c < channels; ++c) {
    const int64_t second = batch == 2 ? (channels + c) * spatial : c * spatial + 1;
    values[static_cast<size_t>(second)] = -values[static_cast<size_t>(second)];
  }
  return Tensor::from_vector(values, shape);
}

// `after`: the epilogue fused into the op, drawing its dropout from a
// generator per device in the same state.
void check_batch_norm(const Shape& shape, double momentum, double eps, Mode mode, bool affine, uint64_t seed,
                      Layout layout, const BatchNormEpilogue& after = {}) {
  const int64_t channels = shape[1];
  const Tensor running_mean = random_tensor({channels}, seed + 2, -0.5, 0.5);
  const Tensor running_var = random_tensor({channels}, seed + 3, 0.5, 2);
  // Each device's own copy of the running statistics, updated in place.
  Tensor cpu_mean, cpu_var, gpu_mean, gpu_var;
  if (tracks(mode)) {
    cpu_mean = running_mean.clone();
    cpu_var = running_var.clone();
    gpu_mean = running_mean.to(kGpu);
    gpu_var = running_var.to(kGpu);
  }
  const BatchNormParams params{mode == Mode::TrainingTracked || mode == Mode::TrainingUntracked, momentum, eps};
  Generator cpu_generator(seed, 9), gpu_generator(seed, 9);
  const Function f = [&](const std::vector<Tensor>& in) {
    const bool on_gpu = in[0].is_cuda();
    BatchNormEpilogue with_generator = after;
    with_generator.generator = on_gpu ? &gpu_generator : &cpu_generator;
    return batch_norm(in[0], affine ? in[1] : Tensor(), affine ? in[2] : Tensor(), on_gpu ? gpu_mean : cpu_mean,
                      on_gpu ? gpu_var : cpu_var, params, with_generator);
  };
  std::vector<Tensor> inputs{norm_input(shape, seed)};
  if (affine) {
    inputs.push_back(random_tensor({channels}, seed + 4, 0.5, 1.5));
    inputs.push_back(random_tensor({channels}, seed + 5, -1, 1));
  }
  const Evaluation cpu = evaluate(f, inputs, Device::cpu());
  const Evaluation gpu = evaluate(f, inputs, kGpu, layout);
  CHECK(gpu_generator.offset() == cpu_generator.offset());
  // The input gradient's floor comes from the terms it sums (tests/compare.h);
  // the projection is the one evaluate() drew, scaled by what dropout may
  // multiply it by.
  const bool batch_statistics = params.training || !tracks(mode);
  const double kept = params.training && after.dropout > 0 ? 1 / (1 - after.dropout) : 1;
  const Tensor projection = mul(random_tensor(shape, 4242), kept);
  const Tolerance gradient_tolerance = kNormTolerance.plus_absolute(batch_norm_gradient_floor(
      inputs[0], projection, affine ? inputs[1] : Tensor(), running_var, batch_statistics, eps));
  check_matches(gpu, cpu, kNormTolerance, &gradient_tolerance);
  if (tracks(mode)) {
    INFO("running statistics");
    CHECK(gpu_mean.is_cuda());
    PIXGRAD_CHECK_CLOSE(gpu_mean, cpu_mean, kNormTolerance);
    PIXGRAD_CHECK_CLOSE(gpu_var, cpu_var, kNormTolerance);
    if (mode == Mode::EvalTracked) {  // eval must leave them alone
      CHECK(count_unequal(gpu_mean, running_mean) == 0);
      CHECK(count_unequal(gpu_var, running_var) == 0);
    }
  }
}

// Non-empty odd sizes, as for the elementwise ops.
const std::vector<Shape> kDropoutShapes{{1}, {7}, {1000003}, {3, 5, 7, 11}};

}  // namespace

TEST_CASE("batch_norm on CUDA matches the CPU for every implementation, mode and shape", "[cuda][batch_norm]") {
  for (const BatchNormImpl impl : kImpls) {
    const BatchNormImplScope scope(impl);
    REQUIRE(kernels::cuda::batch_norm_impl() == impl);
    uint64_t seed = 1000;
    for (const NormCase& c : kCases) {
      for (const Mode mode : {Mode::TrainingTracked, Mode::TrainingUntracked, Mode::EvalTracked, Mode::EvalUntracked}) {
        for (const bool affine : {true, false}) {
          seed += 10;
          // The input one float past alignment too: the float4 path of the
          // handwritten kernels must step aside for it.
          for (const Layout layout : {Layout::Aligned, Layout::Unaligned}) {
            INFO(impl_name(impl) << ", " << shape_str(c.shape) << ", " << mode_name(mode)
                                 << (affine ? ", affine" : ", no affine") << ", momentum " << c.momentum << ", eps "
                                 << c.eps << ", input " << to_string(layout));
            check_batch_norm(c.shape, c.momentum, c.eps, mode, affine, seed, layout);
          }
        }
      }
    }
    // One value per channel: only eval with running statistics can normalise it.
    INFO(impl_name(impl) << ", [1, 64, 1, 1] in eval");
    check_batch_norm({1, 64, 1, 1}, 0.1, 1e-5, Mode::EvalTracked, true, 2000, Layout::Aligned);
  }
}

TEST_CASE("batch_norm with dropout and an activation fused matches the CPU", "[cuda][batch_norm][epilogue]") {
  const BatchNormEpilogue epilogues[] = {{NormActivation::LeakyRelu, 0.2, 0.5},
                                         {NormActivation::Relu, 0.0, 0.5},
                                         {NormActivation::None, 0.0, 0.3},
                                         {NormActivation::LeakyRelu, 0.2, 0.0}};
  // cuDNN cannot apply an epilogue: with it chosen, the handwritten kernels must still run (and match).
  for (const BatchNormImpl impl : kImpls) {
    const BatchNormImplScope scope(impl);
    uint64_t seed = 5000;
    for (const NormCase& c : kCases) {
      for (const Mode mode : {Mode::TrainingTracked, Mode::EvalTracked, Mode::EvalUntracked}) {
        for (const BatchNormEpilogue& after : epilogues) {
          seed += 10;
          for (const Layout layout : {Layout::Aligned, Layout::Unaligned}) {
            INFO(impl_name(impl) << ", " << shape_str(c.shape) << ", " << mode_name(mode) << ", activation "
                                 << static_cast<int>(after.activation) << " dropout " << after.dropout << ", input "
                                 << to_string(layout));
            check_batch_norm(c.shape, c.momentum, c.eps, mode, true, seed, layout, after);
          }
        }
      }
    }
  }
}

TEST_CASE("fused batch norm on CUDA matches the CPU on small odd shapes (for the sanitizers)",
          "[cuda][batch_norm][epilogue][small]") {
  const BatchNormImplScope scope(BatchNormImpl::Handwritten);
  uint64_t seed = 6000;
  // 77 values per plane: element by element; 16: in float4 packs.
  for (const Shape& shape : {Shape{3, 5, 7, 11}, Shape{2, 3, 4, 4}}) {
    for (const BatchNormEpilogue& after : {BatchNormEpilogue::leaky_relu(0.2, 0.5), BatchNormEpilogue::relu(0.3)}) {
      for (const Layout layout : {Layout::Aligned, Layout::Unaligned}) {
        INFO(shape_str(shape) << ", activation " << static_cast<int>(after.activation) << ", input "
                              << to_string(layout));
        check_batch_norm(shape, 0.1, 1e-5, Mode::TrainingTracked, true, seed += 10, layout, after);
      }
    }
  }
}

TEST_CASE("dropout on CUDA draws exactly the CPU's mask for the same seed and offset", "[cuda][dropout]") {
  uint64_t seed = 3000;
  for (const double p : {0.5, 0.3}) {
    for (const Shape& shape : kDropoutShapes) {
      INFO("p " << p << ", " << shape_str(shape));
      Generator on_cpu(77, 5), on_gpu(77, 5);
      const Function f = [&](const std::vector<Tensor>& in) {
        return dropout(in[0], p, true, in[0].is_cuda() ? on_gpu : on_cpu);
      };
      const Tensor x = random_tensor(shape, ++seed, -2, 2);
      const Evaluation cpu = evaluate(f, {x}, Device::cpu());
      // x one float past alignment: the mask is fresh (aligned), x * mask is not.
      const Evaluation gpu = evaluate(f, {x}, kGpu, Layout::Unaligned);
      CHECK(on_gpu.offset() == on_cpu.offset());
      // Exactly equal values (a dropped element may be +0 on one device and -0 on the other).
      CHECK(count_unequal(gpu.output, cpu.output) == 0);
      // The gradient flows through the same mask.
      const std::vector<float> expected_grad = cpu.grads[0].to_vector(), grad = gpu.grads[0].to_vector();
      REQUIRE(grad.size() == expected_grad.size());
      size_t zeros_differ = 0;
      for (size_t i = 0; i < grad.size(); ++i) zeros_differ += (grad[i] == 0) != (expected_grad[i] == 0);
      CHECK(zeros_differ == 0);
      PIXGRAD_CHECK_CLOSE(gpu.grads[0], cpu.grads[0], kElementwiseTolerance);
      // The next draw continues the stream on both devices alike.
      const Tensor again_cpu = dropout(x, p, true, on_cpu), again_gpu = dropout(x.to(kGpu), p, true, on_gpu);
      CHECK(count_unequal(again_gpu, again_cpu) == 0);
    }
  }
  const Tensor x = random_tensor({3, 5, 7, 11}, 3100).to(kGpu);
  CHECK(count_unequal(dropout(x, 0.5, false), x) == 0);
}

TEST_CASE("uniform and normal draws made on CUDA equal the host's", "[cuda][random]") {
  uint64_t seed = 4000;
  for (const Shape& shape : kDropoutShapes) {
    INFO(shape_str(shape));
    Generator on_cpu(++seed, 3), on_gpu(seed, 3);
    for (int draw = 0; draw < 2; ++draw) {
      INFO("draw " << draw);
      const Tensor uniform_cpu = Tensor::uniform(shape, -2, 3, on_cpu);
      const Tensor uniform_gpu = Tensor::uniform(shape, -2, 3, on_gpu, kGpu);
      CHECK(uniform_gpu.is_cuda());
      CHECK(count_unequal(uniform_gpu, uniform_cpu) == 0);  // bit for bit
      CHECK(on_gpu.offset() == on_cpu.offset());
      // Normal: Box-Muller's logf and cosf may differ in the last bits.
      const Tensor normal_cpu = Tensor::normal(shape, 0.5, 2, on_cpu);
      const Tensor normal_gpu = Tensor::normal(shape, 0.5, 2, on_gpu, kGpu);
      CHECK(normal_gpu.is_cuda());
      PIXGRAD_CHECK_CLOSE(normal_gpu, normal_cpu, kElementwiseTolerance);
      CHECK(on_gpu.offset() == on_cpu.offset());
    }
  }
}
