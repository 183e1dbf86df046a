// Choosing the kernel for a tensor's dtype and device.
//
// An op calls run_kernel with one body, and the body names each kernel once,
// unqualified, with the device tag it is given as its first argument
// (kernels/device_tags.h): the tag picks the CPU or the CUDA overload.
//
//   run_kernel("relu", x, [&](auto on, auto zero) {
//     using T = decltype(zero);  // float or double
//     unary_forward(on, UnaryOp::Relu, x.data<T>(), y.data<T>(), n, 0);
//   });
//
// On the host T is the tensor's dtype, float or double; CUDA kernels compute
// in float32. In a build without CUDA the body is never instantiated with the
// CUDA tag, so the CUDA kernels need not exist there.
#pragma once

#include <pixgrad/core/cuda_info.h>
#include <pixgrad/core/error.h>
#include <pixgrad/core/tensor.h>
#include <pixgrad/kernels/device_tags.h>

namespace pixgrad {

// Calls body(T{}) with T = float or double according to `dtype`.
template <typename Body>
decltype(auto) dispatch_floating(DType dtype, const char* op, Body&& body) {
  switch (dtype) {
    case DType::Float32: return body(float{});
    case DType::Float64: return body(double{});
    default: fail(op, ": dtype ", to_string(dtype), " is not supported yet");
  }
}

// Runs body(tag, T{}) where `like` lives: the host's tag with its dtype, or
// the GPU's tag with float on its CUDA device (made current first).
template <typename Body>
void run_kernel(const char* op, const Tensor& like, Body&& body) {
  if (like.is_cuda()) {
#ifdef PIXGRAD_WITH_CUDA
    PIXGRAD_CHECK(like.dtype() == DType::Float32, op, ": CUDA kernels compute in float32, not ",
                  to_string(like.dtype()));
    cuda_activate(like.device().index());
    body(kernels::cuda::gpu, float{});
#else
    fail(op, ": pixgrad was built without CUDA");
#endif
  } else {
    dispatch_floating(like.dtype(), op, [&](auto zero) { body(kernels::cpu::host, zero); });
  }
}

// The data pointer of a tensor that may be undefined (optional operands).
template <typename T>
T* data_or_null(const Tensor& tensor) {
  return tensor.defined() ? tensor.data<T>() : nullptr;
}

}  // namespace pixgrad
