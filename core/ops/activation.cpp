// Unary activations and their derivatives.
#include "core/autograd.h"
#include "core/dispatch.h"
#include "core/ops.h"
#include "kernels/cpu/elementwise.h"

namespace pixgrad {

namespace {

using kernels::cpu::UnaryOp;

Tensor unary(const char* op, UnaryOp kind, const Tensor& input, double parameter = 0) {
  check_nonempty(op, input);
  require_cpu(op, input);
  Tensor output = Tensor::empty_like(input);
  dispatch_floating(input.dtype(), op, [&](auto zero) {
    using T = decltype(zero);
    kernels::cpu::unary_forward<T>(kind, input.data<T>(), output.data<T>(), input.numel(), parameter);
  });
  // Saved tensors are detached: a node must not own its own output's graph.
  const Tensor x = input.detach(), y = output.detach();
  return record(op, output, {input}, [op, kind, parameter, x, y](const Tensor& grad_output) {
    Tensor grad_input = Tensor::empty_like(x);
    dispatch_floating(x.dtype(), op, [&](auto zero) {
      using T = decltype(zero);
      kernels::cpu::unary_backward<T>(kind, x.data<T>(), y.data<T>(), grad_output.data<T>(), grad_input.data<T>(),
                                      x.numel(), parameter);
    });
    return std::vector<Tensor>{grad_input};
  });
}

}  // namespace

Tensor relu(const Tensor& input) { return unary("relu", UnaryOp::Relu, input); }
Tensor leaky_relu(const Tensor& input, double negative_slope) {
  return unary("leaky_relu", UnaryOp::LeakyRelu, input, negative_slope);
}
Tensor tanh(const Tensor& input) { return unary("tanh", UnaryOp::Tanh, input); }
Tensor sigmoid(const Tensor& input) { return unary("sigmoid", UnaryOp::Sigmoid, input); }
Tensor softplus(const Tensor& input) { return unary("softplus", UnaryOp::Softplus, input); }
Tensor abs(const Tensor& input) { return unary("abs", UnaryOp::Abs, input); }
Tensor neg(const Tensor& input) { return unary("neg", UnaryOp::Neg, input); }

}  // namespace pixgrad
