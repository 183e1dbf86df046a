// The tests' own bf16 rounding, written from the format's definition rather
// than from the kernels: keep the top 16 bits of an FP32 value, rounding the
// dropped 16 to nearest with ties to even; NaN stays NaN; a denormal becomes
// zero of its sign (as the AVX-512 BF16 conversions do).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace pixgrad::testing {

inline float round_to_bf16(float value) {
  if (std::isnan(value)) return value;
  if (std::fpclassify(value) == FP_SUBNORMAL) return std::signbit(value) ? -0.0f : 0.0f;
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  const uint32_t lowest_kept = (bits >> 16) & 1u;
  bits += 0x7FFFu + lowest_kept;  // carries into the kept half past the midpoint, or at it when odd
  bits &= 0xFFFF0000u;
  float rounded;
  std::memcpy(&rounded, &bits, sizeof rounded);
  return rounded;
}

// Unit roundoff of bf16 (8 significant bits) and of FP32.
constexpr double kBf16Unit = 1.0 / 256.0;
constexpr double kFp32Unit = 1.0 / 16777216.0;

}  // namespace pixgrad::testing
