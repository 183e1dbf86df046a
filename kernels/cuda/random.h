// Philox fills on CUDA, the device twins of kernels/cpu/random.h (stream
// layout in kernels/philox.h). Uniform fills are bit-identical to the CPU;
// normal fills agree to the last bits of logf/cosf (see random.cu).
#pragma once

#include <cstdint>

#include <pixgrad/kernels/device_tags.h>

namespace pixgrad::kernels::cuda {

void fill_uniform(Gpu, float* out, int64_t n, uint64_t seed, uint64_t offset, double low, double high);
void fill_normal(Gpu, float* out, int64_t n, uint64_t seed, uint64_t offset, double mean, double stddev);

}  // namespace pixgrad::kernels::cuda
