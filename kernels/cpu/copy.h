// Strided row copies on the host, the twin of kernels/cuda/copy.h.
#pragma once

#include <cstdint>

#include <pixgrad/kernels/device_tags.h>

namespace pixgrad::kernels::cpu {

// Copies `rows` rows of `row_bytes` bytes from rows `source_pitch` bytes
// apart to rows `destination_pitch` bytes apart.
void copy_rows(Host, void* destination, int64_t destination_pitch, const void* source, int64_t source_pitch,
               int64_t row_bytes, int64_t rows);

}  // namespace pixgrad::kernels::cpu
