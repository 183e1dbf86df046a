// Philox fills on the host (see kernels/philox.h for the stream layout).
#pragma once

#include <cstdint>

#include <pixgrad/kernels/device_tags.h>

namespace pixgrad::kernels::cpu {

template <typename T>
void fill_uniform(Host, T* out, int64_t n, uint64_t seed, uint64_t offset, double low, double high);
template <typename T>
void fill_normal(Host, T* out, int64_t n, uint64_t seed, uint64_t offset, double mean, double stddev);

}  // namespace pixgrad::kernels::cpu
