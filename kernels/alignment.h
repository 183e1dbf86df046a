// Whether a pointer can be read and written as float4 packs (16-byte
// aligned), the test every vectorised kernel makes on the host before
// choosing its packed form.
#pragma once

#include <cstdint>

namespace pixgrad::kernels {

inline bool aligned16(const void* pointer) { return reinterpret_cast<uintptr_t>(pointer) % 16 == 0; }

}  // namespace pixgrad::kernels
