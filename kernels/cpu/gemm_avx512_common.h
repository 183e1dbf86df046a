// What the AVX-512 GEMM kernels (FP32 and bf16) share: the 14 x 32 register
// tile, an in-register 16 x 16 transpose, tail masks and the tile's store.
// Internal to kernels/cpu.
// Each function carries its target attribute, so it inlines into any caller
// compiled for AVX-512 (or more) while the library stays baseline x86-64.
#pragma once

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#define PIXGRAD_X86 1
#define PIXGRAD_AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,fma")))

namespace pixgrad::kernels::cpu::detail {

// The micro-kernels' C tile: 14 rows of two 16-float vectors, 28 of the 32
// zmm registers, leaving two for B and one for a broadcast of A.
constexpr int kAvx512MR = 14;
constexpr int kAvx512NR = 32;

// Shuffles in their merge-masked form with a full mask: the plain intrinsics
// pass an "undefined" operand that GCC 12 flags with -Wmaybe-uninitialized
// once inlined (GCC bug 105593); these compile to the same instructions.
constexpr __mmask16 kAll = 0xFFFF;
PIXGRAD_AVX512 inline __m512 unpack_lo(__m512 a, __m512 b) {
  return _mm512_mask_unpacklo_ps(a, kAll, a, b);
}
PIXGRAD_AVX512 inline __m512 unpack_hi(__m512 a, __m512 b) {
  return _mm512_mask_unpackhi_ps(a, kAll, a, b);
}
template <int IMM>
PIXGRAD_AVX512 inline __m512 shuffle_ps(__m512 a, __m512 b) {
  return _mm512_mask_shuffle_ps(a, kAll, a, b, IMM);
}
template <int IMM>
PIXGRAD_AVX512 inline __m512 shuffle_lanes(__m512 a, __m512 b) {
  return _mm512_mask_shuffle_f32x4(a, kAll, a, b, IMM);
}

// In-register transpose of a 16 x 16 block: r[i] holds row i on entry and
// column i on exit.
PIXGRAD_AVX512 inline void transpose16(__m512 r[16]) {
  __m512 t[16];
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = unpack_lo(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = unpack_hi(r[2 * i], r[2 * i + 1]);
  }
  // Per 128-bit lane L, r[4g + c] now gathers rows 4g..4g+3 at column 4L + c.
#pragma GCC unroll 4
  for (int g = 0; g < 4; ++g) {
    r[4 * g + 0] = shuffle_ps<0x44>(t[4 * g + 0], t[4 * g + 2]);
    r[4 * g + 1] = shuffle_ps<0xEE>(t[4 * g + 0], t[4 * g + 2]);
    r[4 * g + 2] = shuffle_ps<0x44>(t[4 * g + 1], t[4 * g + 3]);
    r[4 * g + 3] = shuffle_ps<0xEE>(t[4 * g + 1], t[4 * g + 3]);
  }
  // Transpose the 4 x 4 grid of 128-bit lanes for each c.
#pragma GCC unroll 4
  for (int c = 0; c < 4; ++c) {
    const __m512 u0 = shuffle_lanes<0x44>(r[c], r[4 + c]);
    const __m512 u1 = shuffle_lanes<0xEE>(r[c], r[4 + c]);
    const __m512 u2 = shuffle_lanes<0x44>(r[8 + c], r[12 + c]);
    const __m512 u3 = shuffle_lanes<0xEE>(r[8 + c], r[12 + c]);
    t[c] = shuffle_lanes<0x88>(u0, u2);
    t[4 + c] = shuffle_lanes<0xDD>(u0, u2);
    t[8 + c] = shuffle_lanes<0x88>(u1, u3);
    t[12 + c] = shuffle_lanes<0xDD>(u1, u3);
  }
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) r[i] = t[i];
}

PIXGRAD_AVX512 inline __mmask16 tail_mask(int64_t count) {
  return count >= 16 ? static_cast<__mmask16>(0xFFFF)
                     : static_cast<__mmask16>((1u << std::max<int64_t>(count, 0)) - 1u);
}

// C[m x n] = alpha * acc + beta * C for a tile held as acc0 (columns 0..15)
// and acc1 (16..31) per row. beta == 0 never reads C. STREAM: a full tile,
// beta 0, 64-byte aligned rows, written with non-temporal stores.
template <int MR, bool STREAM = false>
PIXGRAD_AVX512 inline __attribute__((always_inline)) void store_tile(
    const __m512 (&acc0)[MR], const __m512 (&acc1)[MR], float* c, int64_t ldc, int64_t m,
    int64_t n, float alpha, float beta) {
  const __mmask16 m0 = tail_mask(n);
  const __mmask16 m1 = tail_mask(n - 16);
  const __m512 va = _mm512_set1_ps(alpha);
  const __m512 vb = _mm512_set1_ps(beta);
  const bool read_c = beta != 0.0f;
#pragma GCC unroll 14
  for (int i = 0; i < MR; ++i) {
    if (i >= m) break;
    float* row = c + i * ldc;
    __m512 r0 = _mm512_mul_ps(va, acc0[i]);
    __m512 r1 = _mm512_mul_ps(va, acc1[i]);
    if (STREAM) {
      _mm512_stream_ps(row, r0);
      _mm512_stream_ps(row + 16, r1);
      continue;
    }
    if (read_c) {
      r0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, row), r0);
      r1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, row + 16), r1);
    }
    _mm512_mask_storeu_ps(row, m0, r0);
    _mm512_mask_storeu_ps(row + 16, m1, r1);
  }
}

}  // namespace pixgrad::kernels::cpu::detail

#endif  // x86
