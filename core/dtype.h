// Element types. float32 is what the kernels compute in; float64 exists on the
// CPU so that gradients can be checked by finite differences in double
// precision; the half types are reserved for mixed-precision work.
#pragma once

#include <cstddef>
#include <string>

namespace pixgrad {

enum class DType { Float32, Float64, BFloat16, Float16 };

size_t element_size(DType dtype);
std::string to_string(DType dtype);

}  // namespace pixgrad
