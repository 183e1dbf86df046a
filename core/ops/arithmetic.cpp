// add / sub / mul / div, tensor-tensor (equal shapes) and tensor-scalar.
#include <pixgrad/core/autograd.h>
#include <pixgrad/core/dispatch.h>
#include <pixgrad/core/ops.h>
#include <pixgrad/kernels/cpu/elementwise.h>
#include <pixgrad/kernels/cuda/elementwise.h>

namespace pixgrad {

namespace {

using kernels::cpu::BinaryOp;

Tensor binary_kernel(const char* op, BinaryOp kind, const Tensor& a, const Tensor& b) {
  check_nonempty(op, a, "first operand");
  check_nonempty(op, b, "second operand");
  check_same(op, a, b);
  Tensor out = Tensor::empty_like(a);
  const int64_t n = a.numel();
  run_kernel(
      op, a,
      [&](auto zero) {
        using T = decltype(zero);
        kernels::cpu::binary_forward<T>(kind, a.data<T>(), b.data<T>(), out.data<T>(), n);
      },
      PIXGRAD_CUDA_KERNEL(
          [&] { kernels::cuda::binary_forward(kind, a.data<float>(), b.data<float>(), out.data<float>(), n); }));
  return out;
}

Tensor scalar_kernel(const char* op, BinaryOp kind, const Tensor& a, double b) {
  check_nonempty(op, a);
  Tensor out = Tensor::empty_like(a);
  const int64_t n = a.numel();
  run_kernel(
      op, a,
      [&](auto zero) {
        using T = decltype(zero);
        kernels::cpu::scalar_forward<T>(kind, a.data<T>(), b, out.data<T>(), n);
      },
      PIXGRAD_CUDA_KERNEL([&] { kernels::cuda::scalar_forward(kind, a.data<float>(), b, out.data<float>(), n); }));
  return out;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  return record("add", binary_kernel("add", BinaryOp::Add, a, b), {a, b},
                [](const Tensor& g) { return std::vector<Tensor>{g, g}; });
}

Tensor sub(const Tensor& a, const Tensor& b) {
  const bool b_needs = b.requires_grad();
  return record("sub", binary_kernel("sub", BinaryOp::Sub, a, b), {a, b}, [b_needs](const Tensor& g) {
    return std::vector<Tensor>{g, b_needs ? neg(g) : Tensor()};
  });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  const Tensor sa = a.detach(), sb = b.detach();
  const bool a_needs = a.requires_grad(), b_needs = b.requires_grad();
  return record("mul", binary_kernel("mul", BinaryOp::Mul, a, b), {a, b}, [=](const Tensor& g) {
    return std::vector<Tensor>{a_needs ? mul(g, sb) : Tensor(), b_needs ? mul(g, sa) : Tensor()};
  });
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = binary_kernel("div", BinaryOp::Div, a, b);
  const Tensor sb = b.detach(), quotient = out.detach();
  const bool a_needs = a.requires_grad(), b_needs = b.requires_grad();
  // d(a/b)/db = -a/b^2 = -(a/b)/b
  return record("div", out, {a, b}, [=](const Tensor& g) {
    return std::vector<Tensor>{a_needs ? div(g, sb) : Tensor(), b_needs ? neg(mul(g, div(quotient, sb))) : Tensor()};
  });
}

Tensor add(const Tensor& a, double b) {
  return record("add_scalar", scalar_kernel("add_scalar", BinaryOp::Add, a, b), {a},
                [](const Tensor& g) { return std::vector<Tensor>{g}; });
}

Tensor sub(const Tensor& a, double b) {
  return record("sub_scalar", scalar_kernel("sub_scalar", BinaryOp::Sub, a, b), {a},
                [](const Tensor& g) { return std::vector<Tensor>{g}; });
}

Tensor mul(const Tensor& a, double b) {
  return record("mul_scalar", scalar_kernel("mul_scalar", BinaryOp::Mul, a, b), {a},
                [b](const Tensor& g) { return std::vector<Tensor>{mul(g, b)}; });
}

Tensor div(const Tensor& a, double b) {
  return record("div_scalar", scalar_kernel("div_scalar", BinaryOp::Div, a, b), {a},
                [b](const Tensor& g) { return std::vector<Tensor>{div(g, b)}; });
}

// ---- in place ----

void add_(const Tensor& destination, const Tensor& source) {
  check_same("add_", destination, source);
  const int64_t n = destination.numel();
  run_kernel(
      "add_", destination,
      [&](auto zero) {
        using T = decltype(zero);
        kernels::cpu::accumulate<T>(destination.data<T>(), source.data<T>(), n);
      },
      PIXGRAD_CUDA_KERNEL([&] { kernels::cuda::accumulate(destination.data<float>(), source.data<float>(), n); }));
}

void fill_(const Tensor& destination, double value) {
  PIXGRAD_CHECK(destination.defined(), "fill_: undefined tensor");
  const int64_t n = destination.numel();
  run_kernel(
      "fill_", destination,
      [&](auto zero) {
        using T = decltype(zero);
        kernels::cpu::fill<T>(destination.data<T>(), n, value);
      },
      PIXGRAD_CUDA_KERNEL([&] { kernels::cuda::fill(destination.data<float>(), n, value); }));
}

}  // namespace pixgrad
