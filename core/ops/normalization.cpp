// batch_norm and dropout.
#include <cmath>

#include <pixgrad/core/autograd.h>
#include <pixgrad/core/dispatch.h>
#include <pixgrad/core/ops.h>
#include <pixgrad/kernels/philox.h>
#include <pixgrad/kernels/cpu/batch_norm.h>
#include <pixgrad/kernels/cpu/dropout.h>
#include <pixgrad/kernels/cuda/batch_norm.h>
#include <pixgrad/kernels/cuda/dropout.h>

namespace pixgrad {

namespace {

void check_channel_vector(const Tensor& vector, const Tensor& input, const char* role) {
  if (!vector.defined()) return;
  PIXGRAD_CHECK(vector.shape() == Shape{input.size(1)}, "batch_norm: ", role, " has shape ", shape_str(vector.shape()),
                ", expected [", input.size(1), "] for input ", shape_str(input.shape()));
  PIXGRAD_CHECK(vector.dtype() == input.dtype() && vector.device() == input.device(), "batch_norm: ", role, " is ",
                to_string(vector.dtype()), " on ", vector.device().str(), ", input is ", to_string(input.dtype()),
                " on ", input.device().str());
}

template <typename T>
const T* pointer_or_null(const Tensor& tensor) {
  return tensor.defined() ? tensor.data<T>() : nullptr;
}

template <typename T>
T* mutable_or_null(const Tensor& tensor) {
  return tensor.defined() ? tensor.data<T>() : nullptr;
}

}  // namespace

Tensor batch_norm(const Tensor& input, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, BatchNormParams params) {
  check_nonempty("batch_norm", input);
  PIXGRAD_CHECK(input.dim() >= 2, "batch_norm: input ", shape_str(input.shape()), " needs at least [N, C]");
  check_channel_vector(weight, input, "weight");
  check_channel_vector(bias, input, "bias");
  check_channel_vector(running_mean, input, "running_mean");
  check_channel_vector(running_var, input, "running_var");
  PIXGRAD_CHECK(running_mean.defined() == running_var.defined(),
                "batch_norm: give both running_mean and running_var, or neither");
  PIXGRAD_CHECK(params.eps > 0, "batch_norm: eps must be positive, got ", params.eps);

  const kernels::cpu::BatchNormShape shape{input.size(0), input.size(1), input.numel() / (input.size(0) * input.size(1))};
  const bool batch_statistics = params.training || !running_mean.defined();
  PIXGRAD_CHECK(!batch_statistics || shape.batch * shape.spatial > 1, "batch_norm: input ", shape_str(input.shape()),
                " has one value per channel; batch statistics need more");

  Tensor output = Tensor::empty_like(input);
  Tensor mean = Tensor::empty({shape.channels}, input.device(), input.dtype());
  Tensor invstd = Tensor::empty_like(mean);
  const bool update_running = running_mean.defined() && params.training;
  if (batch_statistics) {
    const Tensor unbiased_var = Tensor::empty_like(mean);
    run_kernel(
        "batch_norm", input,
        [&](auto zero) {
          using T = decltype(zero);
          kernels::cpu::batch_norm_forward_training<T>(shape, input.data<T>(), pointer_or_null<T>(weight),
                                                       pointer_or_null<T>(bias), params.eps, output.data<T>(),
                                                       mean.data<T>(), invstd.data<T>(), unbiased_var.data<T>());
          if (!update_running) return;
          T* rm = running_mean.data<T>();
          T* rv = running_var.data<T>();
          const T m = static_cast<T>(params.momentum);
          for (int64_t c = 0; c < shape.channels; ++c) {
            rm[c] = (T(1) - m) * rm[c] + m * mean.data<T>()[c];
            rv[c] = (T(1) - m) * rv[c] + m * unbiased_var.data<T>()[c];
          }
        },
        PIXGRAD_CUDA_KERNEL([&] {
          kernels::cuda::batch_norm_forward_training(shape, input.data<float>(), pointer_or_null<float>(weight),
                                                     pointer_or_null<float>(bias), params.eps, output.data<float>(),
                                                     mean.data<float>(), invstd.data<float>(),
                                                     unbiased_var.data<float>());
          if (update_running)
            kernels::cuda::batch_norm_update_running(shape.channels, mean.data<float>(), unbiased_var.data<float>(),
                                                     params.momentum, running_mean.data<float>(),
                                                     running_var.data<float>());
        }));
  } else {
    run_kernel(
        "batch_norm", input,
        [&](auto zero) {
          using T = decltype(zero);
          for (int64_t c = 0; c < shape.channels; ++c) {
            mean.data<T>()[c] = running_mean.data<T>()[c];
            invstd.data<T>()[c] =
                static_cast<T>(1.0 / std::sqrt(static_cast<double>(running_var.data<T>()[c]) + params.eps));
          }
          kernels::cpu::batch_norm_forward_inference<T>(shape, input.data<T>(), pointer_or_null<T>(weight),
                                                        pointer_or_null<T>(bias), mean.data<T>(), invstd.data<T>(),
                                                        output.data<T>());
        },
        PIXGRAD_CUDA_KERNEL([&] {
          kernels::cuda::batch_norm_statistics_from_running(shape.channels, running_mean.data<float>(),
                                                            running_var.data<float>(), params.eps,
                                                            mean.data<float>(), invstd.data<float>());
          kernels::cuda::batch_norm_forward_inference(shape, input.data<float>(), pointer_or_null<float>(weight),
                                                      pointer_or_null<float>(bias), mean.data<float>(),
                                                      invstd.data<float>(), output.data<float>());
        }));
  }

  const Tensor x = input.detach(), w = weight.defined() ? weight.detach() : Tensor();
  const bool input_needs = input.requires_grad();
  const bool weight_needs = weight.defined() && weight.requires_grad();
  const bool bias_needs = bias.defined() && bias.requires_grad();
  return record("batch_norm", output, {input, weight, bias}, [=](const Tensor& g) {
    Tensor grad_x = input_needs ? Tensor::empty_like(x) : Tensor();
    Tensor grad_w = weight_needs ? Tensor::empty_like(w) : Tensor();
    Tensor grad_b = bias_needs ? Tensor::empty_like(mean) : Tensor();
    run_kernel(
        "batch_norm", x,
        [&](auto zero) {
          using T = decltype(zero);
          kernels::cpu::batch_norm_backward<T>(shape, x.data<T>(), g.data<T>(), pointer_or_null<T>(w),
                                               mean.data<T>(), invstd.data<T>(), batch_statistics,
                                               mutable_or_null<T>(grad_x), mutable_or_null<T>(grad_w),
                                               mutable_or_null<T>(grad_b));
        },
        PIXGRAD_CUDA_KERNEL([&] {
          kernels::cuda::batch_norm_backward(shape, x.data<float>(), g.data<float>(), pointer_or_null<float>(w),
                                             mean.data<float>(), invstd.data<float>(), batch_statistics,
                                             mutable_or_null<float>(grad_x), mutable_or_null<float>(grad_w),
                                             mutable_or_null<float>(grad_b));
        }));
    return std::vector<Tensor>{grad_x, grad_w, grad_b};
  });
}

Tensor dropout(const Tensor& input, double p, bool training, Generator& generator) {
  check_nonempty("dropout", input);
  PIXGRAD_CHECK(p >= 0 && p <= 1, "dropout: probability must be in [0, 1], got ", p);
  if (!training || p == 0) return input;
  Tensor mask = Tensor::empty_like(input);
  const int64_t n = input.numel();
  const uint64_t offset = generator.reserve(philox::uniform_blocks(static_cast<uint64_t>(n)));
  const uint64_t seed = generator.seed();
  run_kernel(
      "dropout", input,
      [&](auto zero) {
        using T = decltype(zero);
        kernels::cpu::dropout_mask<T>(mask.data<T>(), n, p, seed, offset);
      },
      PIXGRAD_CUDA_KERNEL([&] { kernels::cuda::dropout_mask(mask.data<float>(), n, p, seed, offset); }));
  Tensor output;
  {
    NoGradGuard no_grad;
    output = mul(input, mask);
  }
  return record("dropout", output, {input}, [mask](const Tensor& g) { return std::vector<Tensor>{mul(g, mask)}; });
}

}  // namespace pixgrad
