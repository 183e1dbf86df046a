// add / sub / mul / div, tensor-tensor (equal shapes) and tensor-scalar. Each
// backward is written with these same ops, so it can be differentiated again.
#include <pixgrad/core/autograd.h>
#include <pixgrad/core/dispatch.h>
#include <pixgrad/core/ops.h>
#include <pixgrad/kernels/cpu/elementwise.h>
#include <pixgrad/kernels/cuda/elementwise.h>

namespace pixgrad {

namespace {

using kernels::BinaryOp;

Tensor binary_kernel(const char* op, BinaryOp kind, const Tensor& a, const Tensor& b) {
  check_nonempty(op, a, "first operand");
  check_nonempty(op, b, "second operand");
  check_same(op, a, b);
  Tensor out = Tensor::empty_like(a);
  const int64_t n = a.numel();
  run_kernel(op, a, [&](auto on, auto zero) {
    using T = decltype(zero);
    binary_forward(on, kind, a.data<T>(), b.data<T>(), out.data<T>(), n);
  });
  return out;
}

Tensor scalar_kernel(const char* op, BinaryOp kind, const Tensor& a, double b) {
  check_nonempty(op, a);
  Tensor out = Tensor::empty_like(a);
  const int64_t n = a.numel();
  run_kernel(op, a, [&](auto on, auto zero) {
    using T = decltype(zero);
    scalar_forward(on, kind, a.data<T>(), b, out.data<T>(), n);
  });
  return out;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  return record_differentiable("add", binary_kernel("add", BinaryOp::Add, a, b), {a, b},
                [](const Tensor& g, const BackwardContext&) { return std::vector<Tensor>{g, g}; });
}

Tensor sub(const Tensor& a, const Tensor& b) {
  return record_differentiable("sub", binary_kernel("sub", BinaryOp::Sub, a, b), {a, b},
                [](const Tensor& g, const BackwardContext& context) {
                  return std::vector<Tensor>{g, context.needs_input_grad(1) ? neg(g) : Tensor()};
                });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  return record_differentiable("mul", binary_kernel("mul", BinaryOp::Mul, a, b), {a, b},
                [](const Tensor& g, const BackwardContext& context) {
                  return std::vector<Tensor>{context.needs_input_grad(0) ? mul(g, context.input(1)) : Tensor(),
                                             context.needs_input_grad(1) ? mul(g, context.input(0)) : Tensor()};
                });
}

Tensor div(const Tensor& a, const Tensor& b) {
  // d(a/b)/db = -a/b^2 = -(a/b)/b
  return record_differentiable("div", binary_kernel("div", BinaryOp::Div, a, b), {a, b},
                [](const Tensor& g, const BackwardContext& context) {
                  const Tensor& a = context.input(0);
                  const Tensor& b = context.input(1);
                  return std::vector<Tensor>{context.needs_input_grad(0) ? div(g, b) : Tensor(),
                                             context.needs_input_grad(1) ? neg(mul(g, div(div(a, b), b))) : Tensor()};
                });
}

Tensor add(const Tensor& a, double b) {
  return record_differentiable("add_scalar", scalar_kernel("add_scalar", BinaryOp::Add, a, b), {a},
                [](const Tensor& g, const BackwardContext&) { return std::vector<Tensor>{g}; });
}

Tensor sub(const Tensor& a, double b) {
  return record_differentiable("sub_scalar", scalar_kernel("sub_scalar", BinaryOp::Sub, a, b), {a},
                [](const Tensor& g, const BackwardContext&) { return std::vector<Tensor>{g}; });
}

Tensor mul(const Tensor& a, double b) {
  return record_differentiable("mul_scalar", scalar_kernel("mul_scalar", BinaryOp::Mul, a, b), {a},
                [b](const Tensor& g, const BackwardContext&) { return std::vector<Tensor>{mul(g, b)}; });
}

Tensor div(const Tensor& a, double b) {
  return record_differentiable("div_scalar", scalar_kernel("div_scalar", BinaryOp::Div, a, b), {a},
                [b](const Tensor& g, const BackwardContext&) { return std::vector<Tensor>{div(g, b)}; });
}

// ---- in place ----

void add_(const Tensor& destination, const Tensor& source) {
  check_same("add_", destination, source);
  const int64_t n = destination.numel();
  run_kernel("add_", destination, [&](auto on, auto zero) {
    using T = decltype(zero);
    accumulate(on, destination.data<T>(), source.data<T>(), n);
  });
}

void mul_(const Tensor& destination, double value) {
  check_nonempty("mul_", destination);
  run_kernel("mul_", destination, [&](auto on, auto zero) {
    using T = decltype(zero);
    scalar_forward(on, BinaryOp::Mul, destination.data<T>(), value, destination.data<T>(), destination.numel());
  });
}

void fill_(const Tensor& destination, double value) {
  PIXGRAD_CHECK(destination.defined(), "fill_: undefined tensor");
  const int64_t n = destination.numel();
  run_kernel("fill_", destination, [&](auto on, auto zero) {
    using T = decltype(zero);
    fill(on, destination.data<T>(), n, value);
  });
}

}  // namespace pixgrad
