// Unary ops. The formulas live in kernels/elementwise_ops.h; here each op is
// recorded with a backward that is itself a recorded op (unary_grad), so that
// gradients of gradients work: unary_grad's own backward uses f''.
#include <pixgrad/core/autograd.h>
#include <pixgrad/core/dispatch.h>
#include <pixgrad/core/ops.h>
#include <pixgrad/kernels/cpu/elementwise.h>
#include <pixgrad/kernels/cuda/elementwise.h>

namespace pixgrad {

namespace {

using kernels::UnaryOp;

// ddx * dy * f''(x): the gradient, with respect to x, of unary_grad's output.
// Differentiating it once more (third derivatives) is not supported.
Tensor unary_double_backward(UnaryOp kind, const Tensor& x, const Tensor& operand, const Tensor& grad_y,
                             const Tensor& grad_grad_x, double parameter) {
  const std::string name = std::string(kernels::unary_name(kind)) + "_double_backward";
  Tensor out = Tensor::empty_like(grad_y);
  const int64_t n = out.numel();
  run_kernel(name.c_str(), grad_y, [&](auto on, auto zero) {
    using T = decltype(zero);
    unary_double_backward(on, kind, operand.data<T>(), grad_y.data<T>(), grad_grad_x.data<T>(), out.data<T>(), n,
                          parameter);
  });
  return record(
      name.c_str(), out, {x, grad_y, grad_grad_x},
      [name](const Tensor&, const BackwardContext&) -> std::vector<Tensor> {
        fail(name, ": third derivatives are not supported");
      },
      {});
}

// grad_y * f'(x), recorded with x and grad_y as inputs; `operand` is what
// the formulas read (x, or the forward's output y).
Tensor unary_grad(UnaryOp kind, const Tensor& x, const Tensor& operand, const Tensor& grad_y, double parameter) {
  const std::string name = std::string(kernels::unary_name(kind)) + "_backward";
  Tensor grad_x = Tensor::empty_like(grad_y);
  const int64_t n = grad_x.numel();
  run_kernel(name.c_str(), grad_y, [&](auto on, auto zero) {
    using T = decltype(zero);
    unary_backward(on, kind, operand.data<T>(), grad_y.data<T>(), grad_x.data<T>(), n, parameter);
  });
  return record_differentiable(
      name.c_str(), grad_x, {x, grad_y},
      [kind, parameter](const Tensor& g, const BackwardContext& context) {
        const Tensor& operand = context.saved(0);
        return std::vector<Tensor>{
            context.needs_input_grad(0)
                ? unary_double_backward(kind, context.input(0), operand, context.input(1), g, parameter)
                : Tensor(),
            context.needs_input_grad(1) ? unary_grad(kind, context.input(0), operand, g, parameter) : Tensor()};
      },
      {operand});
}

Tensor unary(UnaryOp kind, const Tensor& input, double parameter = 0) {
  const char* name = kernels::unary_name(kind);
  check_nonempty(name, input);
  Tensor output = Tensor::empty_like(input);
  const int64_t n = input.numel();
  run_kernel(name, input, [&](auto on, auto zero) {
    using T = decltype(zero);
    unary_forward(on, kind, input.data<T>(), output.data<T>(), n, parameter);
  });
  const Tensor operand = kernels::unary_reads_output(kind) ? output : input;
  return record_differentiable(
      name, output, {input},
      [kind, parameter](const Tensor& g, const BackwardContext& context) {
        return std::vector<Tensor>{unary_grad(kind, context.input(0), context.saved(0), g, parameter)};
      },
      {operand});
}

}  // namespace

Tensor relu(const Tensor& input) { return unary(UnaryOp::Relu, input); }
Tensor leaky_relu(const Tensor& input, double negative_slope) {
  return unary(UnaryOp::LeakyRelu, input, negative_slope);
}
Tensor tanh(const Tensor& input) { return unary(UnaryOp::Tanh, input); }
Tensor sigmoid(const Tensor& input) { return unary(UnaryOp::Sigmoid, input); }
Tensor softplus(const Tensor& input) { return unary(UnaryOp::Softplus, input); }
Tensor abs(const Tensor& input) { return unary(UnaryOp::Abs, input); }
Tensor neg(const Tensor& input) { return unary(UnaryOp::Neg, input); }
Tensor square(const Tensor& input) { return unary(UnaryOp::Square, input); }
Tensor sqrt(const Tensor& input) { return unary(UnaryOp::Sqrt, input); }

}  // namespace pixgrad
