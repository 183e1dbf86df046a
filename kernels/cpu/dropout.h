// Dropout masks from Philox (kernels/philox.h): element i is kept when uniform
// number i of the stream at (seed, offset) is >= p, so a CUDA kernel given the
// same seed and offset draws the same mask.
#pragma once

#include <cstdint>

#include <pixgrad/kernels/device_tags.h>

namespace pixgrad::kernels::cpu {

// mask[i] = kept ? 1 / (1 - p) : 0. offset_shift (may be null) is added to
// offset when the kernel runs (a captured step's replays, core/replay_values.h).
template <typename T>
void dropout_mask(Host, T* mask, int64_t n, double p, uint64_t seed, uint64_t offset,
                  const uint64_t* offset_shift = nullptr);

}  // namespace pixgrad::kernels::cpu
