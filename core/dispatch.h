// Choosing the kernel for a tensor's dtype and device.
#pragma once

#include <pixgrad/core/cuda_info.h>
#include <pixgrad/core/error.h>
#include <pixgrad/core/tensor.h>

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

// The CUDA half of run_kernel: a body that launches CUDA kernels. In a build
// without CUDA the body is not compiled at all (CUDA tensors cannot exist
// there, so it could never run).
#ifdef PIXGRAD_WITH_CUDA
#define PIXGRAD_CUDA_KERNEL(...) __VA_ARGS__
#else
#define PIXGRAD_CUDA_KERNEL(...) [] { ::pixgrad::fail("pixgrad was built without CUDA"); }
#endif

// Runs `statement` with CUDA device `device` current; compiled only with CUDA.
#ifdef PIXGRAD_WITH_CUDA
#define PIXGRAD_ON_CUDA_DEVICE(device, ...)    \
  do {                                         \
    ::pixgrad::cuda_activate((device).index()); \
    __VA_ARGS__;                               \
  } while (0)
#else
#define PIXGRAD_ON_CUDA_DEVICE(device, ...) ::pixgrad::fail("pixgrad was built without CUDA")
#endif

// Runs an op's kernel where `like` lives: cpu_body(T{}) with T = float or
// double on the host, cuda_body() on its CUDA device (float32 only).
template <typename CpuBody, typename CudaBody>
void run_kernel(const char* op, const Tensor& like, CpuBody&& cpu_body, CudaBody&& cuda_body) {
  if (like.is_cuda()) {
    PIXGRAD_CHECK(like.dtype() == DType::Float32, op, ": CUDA kernels compute in float32, not ",
                  to_string(like.dtype()));
    cuda_activate(like.device().index());
    cuda_body();
  } else {
    dispatch_floating(like.dtype(), op, cpu_body);
  }
}

}  // namespace pixgrad
