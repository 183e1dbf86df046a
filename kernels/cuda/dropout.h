// Dropout masks on CUDA: bit-identical to kernels/cpu/dropout.h for the same
// (seed, offset), because both evaluate the same Philox stream (kernels/philox.h).
#pragma once

#include <cstdint>

#include <pixgrad/kernels/device_tags.h>

namespace pixgrad::kernels::cuda {

// mask[i] = philox::uniform(seed, offset, i) >= float(p) ? float(1 / (1 - p)) : 0
// offset_shift (device memory, may be null): added to offset when the kernel
// runs (a captured step's replays, core/replay_values.h).
void dropout_mask(Gpu, float* mask, int64_t n, double p, uint64_t seed, uint64_t offset,
                  const uint64_t* offset_shift = nullptr);

}  // namespace pixgrad::kernels::cuda
