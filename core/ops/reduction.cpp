// Reductions to a one-element tensor, and the L1 loss. On CUDA the result
// stays on the device: nothing here waits for the GPU.
#include <pixgrad/core/autograd.h>
#include <pixgrad/core/dispatch.h>
#include <pixgrad/core/ops.h>
#include <pixgrad/kernels/cpu/elementwise.h>
#include <pixgrad/kernels/cpu/reduce.h>
#include <pixgrad/kernels/cuda/elementwise.h>
#include <pixgrad/kernels/cuda/reduce.h>

namespace pixgrad {

namespace {

// A tensor shaped like `shape` filled with the one element of `scalar` times `scale`.
Tensor broadcast_scalar(const Tensor& scalar, const Shape& shape, double scale) {
  Tensor out = Tensor::empty(shape, scalar.device(), scalar.dtype());
  const int64_t n = out.numel();
  run_kernel(
      "broadcast", scalar,
      [&](auto zero) {
        using T = decltype(zero);
        kernels::cpu::fill<T>(out.data<T>(), n, scale * static_cast<double>(scalar.data<T>()[0]));
      },
      PIXGRAD_CUDA_KERNEL([&] { kernels::cuda::fill_from_scalar(out.data<float>(), n, scalar.data<float>(), scale); }));
  return out;
}

}  // namespace

Tensor sum(const Tensor& input) {
  check_nonempty("sum", input);
  Tensor out = Tensor::empty({}, input.device(), input.dtype());
  const int64_t n = input.numel();
  run_kernel(
      "sum", input,
      [&](auto zero) {
        using T = decltype(zero);
        out.data<T>()[0] = static_cast<T>(kernels::cpu::sum(input.data<T>(), n));
      },
      PIXGRAD_CUDA_KERNEL([&] { kernels::cuda::sum(input.data<float>(), n, out.data<float>()); }));
  const Shape shape = input.shape();
  return record("sum", out, {input},
                [shape](const Tensor& g) { return std::vector<Tensor>{broadcast_scalar(g, shape, 1.0)}; });
}

Tensor mean(const Tensor& input) {
  check_nonempty("mean", input);
  return div(sum(input), static_cast<double>(input.numel()));
}

Tensor l1_loss(const Tensor& prediction, const Tensor& target) {
  check_nonempty("l1_loss", prediction, "prediction");
  check_nonempty("l1_loss", target, "target");
  check_same("l1_loss", prediction, target);
  const int64_t count = prediction.numel();
  const double inverse_count = 1.0 / static_cast<double>(count);
  Tensor out = Tensor::empty({}, prediction.device(), prediction.dtype());
  run_kernel(
      "l1_loss", prediction,
      [&](auto zero) {
        using T = decltype(zero);
        out.data<T>()[0] =
            static_cast<T>(kernels::cpu::sum_abs_difference(prediction.data<T>(), target.data<T>(), count) *
                           inverse_count);
      },
      PIXGRAD_CUDA_KERNEL([&] {
        kernels::cuda::sum_abs_difference(prediction.data<float>(), target.data<float>(), count, out.data<float>());
        kernels::cuda::scalar_forward(kernels::cpu::BinaryOp::Mul, out.data<float>(), inverse_count,
                                      out.data<float>(), 1);
      }));
  const Tensor a = prediction.detach(), b = target.detach();
  const bool target_needs = target.requires_grad();
  return record("l1_loss", out, {prediction, target}, [a, b, count, inverse_count, target_needs](const Tensor& g) {
    Tensor grad_a = Tensor::empty_like(a);
    run_kernel(
        "l1_loss", a,
        [&](auto zero) {
          using T = decltype(zero);
          kernels::cpu::sign_of_difference(a.data<T>(), b.data<T>(), static_cast<double>(g.data<T>()[0]) * inverse_count,
                                           grad_a.data<T>(), count);
        },
        PIXGRAD_CUDA_KERNEL([&] {
          kernels::cuda::sign_of_difference(a.data<float>(), b.data<float>(), g.data<float>(), inverse_count,
                                            grad_a.data<float>(), count);
        }));
    return std::vector<Tensor>{grad_a, target_needs ? neg(grad_a) : Tensor()};
  });
}

}  // namespace pixgrad
