// Unary activations and their derivatives.
#include <pixgrad/core/autograd.h>
#include <pixgrad/core/dispatch.h>
#include <pixgrad/core/ops.h>
#include <pixgrad/kernels/cpu/elementwise.h>
#include <pixgrad/kernels/cuda/elementwise.h>

namespace pixgrad {

namespace {

using kernels::cpu::UnaryOp;

Tensor unary(const char* op, UnaryOp kind, const Tensor& input, double parameter = 0) {
  check_nonempty(op, input);
  Tensor output = Tensor::empty_like(input);
  const int64_t n = input.numel();
  run_kernel(
      op, input,
      [&](auto zero) {
        using T = decltype(zero);
        kernels::cpu::unary_forward<T>(kind, input.data<T>(), output.data<T>(), n, parameter);
      },
      PIXGRAD_CUDA_KERNEL(
          [&] { kernels::cuda::unary_forward(kind, input.data<float>(), output.data<float>(), n, parameter); }));
  // Saved tensors are detached: a node must not own its own output's graph.
  const Tensor x = input.detach(), y = output.detach();
  return record(op, output, {input}, [op, kind, parameter, x, y, n](const Tensor& grad_output) {
    Tensor grad_input = Tensor::empty_like(x);
    run_kernel(
        op, x,
        [&](auto zero) {
          using T = decltype(zero);
          kernels::cpu::unary_backward<T>(kind, x.data<T>(), y.data<T>(), grad_output.data<T>(), grad_input.data<T>(),
                                          n, parameter);
        },
        PIXGRAD_CUDA_KERNEL([&] {
          kernels::cuda::unary_backward(kind, x.data<float>(), y.data<float>(), grad_output.data<float>(),
                                        grad_input.data<float>(), n, parameter);
        }));
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
