// Reductions to a one-element tensor, and the L1 loss.
#include "core/autograd.h"
#include "core/dispatch.h"
#include "core/ops.h"
#include "kernels/cpu/reduce.h"

namespace pixgrad {

namespace {

Tensor scalar_like(const Tensor& like, double value) { return Tensor::full({}, value, like.device(), like.dtype()); }

}  // namespace

Tensor sum(const Tensor& input) {
  check_nonempty("sum", input);
  require_cpu("sum", input);
  const double total = dispatch_floating(input.dtype(), "sum", [&](auto zero) {
    return kernels::cpu::sum(input.data<decltype(zero)>(), input.numel());
  });
  const Shape shape = input.shape();
  return record("sum", scalar_like(input, total), {input}, [shape](const Tensor& g) {
    return std::vector<Tensor>{Tensor::full(shape, g.item(), g.device(), g.dtype())};
  });
}

Tensor mean(const Tensor& input) {
  check_nonempty("mean", input);
  return div(sum(input), static_cast<double>(input.numel()));
}

Tensor l1_loss(const Tensor& prediction, const Tensor& target) {
  check_nonempty("l1_loss", prediction, "prediction");
  check_nonempty("l1_loss", target, "target");
  check_same("l1_loss", prediction, target);
  require_cpu("l1_loss", prediction);
  const int64_t count = prediction.numel();
  const double total = dispatch_floating(prediction.dtype(), "l1_loss", [&](auto zero) {
    using T = decltype(zero);
    return kernels::cpu::sum_abs_difference(prediction.data<T>(), target.data<T>(), count);
  });
  const Tensor a = prediction.detach(), b = target.detach();
  const bool target_needs = target.requires_grad();
  return record("l1_loss", scalar_like(prediction, total / static_cast<double>(count)), {prediction, target},
                [a, b, count, target_needs](const Tensor& g) {
                  Tensor grad_a = Tensor::empty_like(a);
                  dispatch_floating(a.dtype(), "l1_loss", [&](auto zero) {
                    using T = decltype(zero);
                    kernels::cpu::sign_of_difference(a.data<T>(), b.data<T>(), g.item() / static_cast<double>(count),
                                                     grad_a.data<T>(), count);
                  });
                  return std::vector<Tensor>{grad_a, target_needs ? neg(grad_a) : Tensor()};
                });
}

}  // namespace pixgrad
