// Device-to-device copies of pitched rows (concat and its backward).
#pragma once

#include <cstdint>

#include <pixgrad/kernels/device_tags.h>

namespace pixgrad::kernels::cuda {

// Copies `rows` rows of `row_bytes` bytes; row r starts at destination + r * destination_pitch
// and source + r * source_pitch. Both pointers are device pointers on the current device.
void copy_rows(Gpu, void* destination, int64_t destination_pitch, const void* source, int64_t source_pitch,
               int64_t row_bytes, int64_t rows);

}  // namespace pixgrad::kernels::cuda
