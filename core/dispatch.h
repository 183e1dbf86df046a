// Choosing the kernel for a tensor's dtype and device.
#pragma once

#include "core/error.h"
#include "core/tensor.h"

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

// Until the CUDA kernels land, ops compute on the host only.
inline void require_cpu(const char* op, const Tensor& tensor) {
  PIXGRAD_CHECK(tensor.is_cpu(), op, ": no kernel for device ", tensor.device().str(), " yet (tensor ",
                shape_str(tensor.shape()), ")");
}

}  // namespace pixgrad
