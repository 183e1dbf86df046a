// Which device a kernel runs on, as the type of its first argument.
//
// Every kernel exists once per device with the same name and the same
// parameters after the tag: kernels::cpu::unary_forward(cpu::Host, ...) for
// float and double, kernels::cuda::unary_forward(cuda::Gpu, ...) for float.
// An op names its kernel once, unqualified, and the tag's namespace picks the
// overload (argument-dependent lookup):
//
//   run_kernel("relu", x, [&](auto on, auto zero) {
//     using T = decltype(zero);
//     unary_forward(on, UnaryOp::Relu, x.data<T>(), y.data<T>(), n, 0);
//   });
//
// (core/dispatch.h calls the body with the tag of the tensor's device.)
#pragma once

namespace pixgrad::kernels {

namespace cpu {
struct Host {};
inline constexpr Host host{};
}  // namespace cpu

namespace cuda {
struct Gpu {};
inline constexpr Gpu gpu{};
}  // namespace cuda

}  // namespace pixgrad::kernels
