// bf16 GEMM on AVX-512 BF16: sgemm's blocked driver (gemm.cpp) with packing
// that rounds the operands to bf16 and a micro-kernel built on VDPBF16PS.
//
// VDPBF16PS treats each 32-bit lane as a pair of bf16 values and adds both
// products of a lane pair to an FP32 accumulator: acc[j] += a0*b0 + a1*b1.
// So the packed panels hold pairs along K: the word for (pair p, column j) of
// B is (B[2p][j], B[2p+1][j]) and the word for (pair p, row i) of A is
// (A[i][2p], A[i][2p+1]); an odd K gets a zero partner. A panel of kc values
// then takes ceil(kc/2) words per row or column, the front of the slot the
// driver reserves for kc floats. Per pair the micro-kernel loads two vectors
// of B and broadcasts 14 words of A into 28 dot products: the FP32 kernel's
// 14 x 32 tile and instruction count, with two K steps per instruction.
//
// The rounding is the hardware's (VCVTNE2PS2BF16): round to nearest even,
// denormals to zero, NaN kept NaN. A bf16 value has 8 significant bits, so
// each product carries a relative error of at most about 2^-7 and the sums are
// FP32's. Products that gemm_bf16_rounds() declines go to sgemm unchanged: a
// side of at most kSkinnyMax makes them bound by reading the large operand,
// and with A^T feeding at most two NR panels of C, FP32 reads A^T in place
// while bf16 would gather all of it into pairs (measured slower, 1.2-1.9x, on
// the U-Net's 8192 x 512 and 8192 x 1024 weights at 4x4 and 8x8 planes).

#include <pixgrad/kernels/cpu/gemm.h>
#include <pixgrad/kernels/cpu/gemm_avx512_common.h>
#include <pixgrad/kernels/cpu/gemm_driver.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace pixgrad::kernels::cpu {
namespace {

// Products of A^T with C this narrow (two NR panels) or narrower stay FP32.
constexpr int64_t kFp32MaxColumns = 64;

#ifdef PIXGRAD_X86
#define PIXGRAD_AVX512_BF16 \
  __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx512bf16,fma")))

using detail::kAvx512MR;
using detail::kAvx512NR;
using detail::tail_mask;
using detail::transpose16;

int64_t pairs_of(int64_t k) { return (k + 1) / 2; }

// Rounds `even` and `odd` (16 values each) to bf16 and interleaves them: word
// j of the result holds even[j] in its low half and odd[j] in its high half.
PIXGRAD_AVX512_BF16 inline __m512 pair_words(__m512 even, __m512 odd) {
  // Halves 0..15 of the conversion are `even`, 16..31 are `odd`.
  const __m512i rounded = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(odd, even));
  const __m512i interleave =
      _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22,
                       6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  return _mm512_castsi512_ps(_mm512_permutexvar_epi16(interleave, rounded));
}

// Rounds 32 consecutive values (masked past `count`, which may be <= 0) to
// bf16: word m holds values 2m and 2m + 1, a pair along a contiguous K.
PIXGRAD_AVX512_BF16 inline __m512 consecutive_pairs(const float* src, int64_t count) {
  const __m512 low = _mm512_maskz_loadu_ps(tail_mask(count), src);
  const __m512 high = _mm512_maskz_loadu_ps(tail_mask(count - 16), src + 16);
  return reinterpret_cast<__m512>(_mm512_cvtne2ps_pbh(high, low));
}

// Pairs along K taken from up to 16 rows that are contiguous in K (row i at
// src + i * ld, `rows` of them, the rest zero), 16 pairs at a time, written
// transposed: pair p of row i goes to dst[p * stride + i]. `lanes` masks the
// store to the panel's width.
PIXGRAD_AVX512_BF16 void pack_rows_contiguous_in_k(const float* src, int64_t ld, int64_t rows,
                                                   int64_t kc, __mmask16 lanes, int64_t stride,
                                                   float* dst) {
  const int64_t pairs = pairs_of(kc);
  for (int64_t k = 0; k < kc; k += 32) {
    __m512 r[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i)
      r[i] = i < rows ? consecutive_pairs(src + i * ld + k, kc - k) : _mm512_setzero_ps();
    transpose16(r);
    const int64_t first = k / 2;
    const int64_t count = std::min<int64_t>(16, pairs - first);
    for (int64_t m = 0; m < count; ++m)
      _mm512_mask_storeu_ps(dst + (first + m) * stride, lanes, r[m]);
  }
}

// Pairs along K taken from rows of K that are contiguous across the panel
// (row k at src + k * ld, `width` valid values of 16): pair p goes to
// dst[p * stride .. + 16].
PIXGRAD_AVX512_BF16 void pack_rows_across_k(const float* src, int64_t ld, int64_t width,
                                            int64_t kc, __mmask16 lanes, int64_t stride,
                                            float* dst) {
  const __mmask16 valid = tail_mask(width);
  for (int64_t p = 0; p < pairs_of(kc); ++p) {
    const __m512 even = _mm512_maskz_loadu_ps(valid, src + 2 * p * ld);
    const __m512 odd =
        2 * p + 1 < kc ? _mm512_maskz_loadu_ps(valid, src + (2 * p + 1) * ld) : _mm512_setzero_ps();
    _mm512_mask_storeu_ps(dst + p * stride, lanes, pair_words(even, odd));
  }
}

// A panel is MR words per pair: 14 rows of op(A).
PIXGRAD_AVX512_BF16 void pack_a_bf16(const float* a, int64_t lda, bool trans, int64_t mc,
                                     int64_t kc, float* dst) {
  constexpr __mmask16 kPanelLanes = (1u << kAvx512MR) - 1u;
  for (int64_t i0 = 0; i0 < mc; i0 += kAvx512MR, dst += kAvx512MR * kc) {
    const int64_t rows = std::min<int64_t>(kAvx512MR, mc - i0);
    if (trans)  // op(A)[i][k] = a[k * lda + i]: the panel's rows lie across K.
      pack_rows_across_k(a + i0, lda, rows, kc, kPanelLanes, kAvx512MR, dst);
    else
      pack_rows_contiguous_in_k(a + i0 * lda, lda, rows, kc, kPanelLanes, kAvx512MR, dst);
  }
}

// A panel is NR = 32 words per pair: two halves of 16 columns of op(B).
PIXGRAD_AVX512_BF16 void pack_b_bf16(const float* b, int64_t ldb, bool trans, int64_t kc,
                                     int64_t nc, float* dst) {
  for (int64_t j0 = 0; j0 < nc; j0 += kAvx512NR, dst += kAvx512NR * kc) {
    const int64_t cols = std::min<int64_t>(kAvx512NR, nc - j0);
    for (int half = 0; half < 2; ++half) {
      const int64_t width = std::clamp<int64_t>(cols - 16 * half, 0, 16);
      const int64_t j = j0 + 16 * half;
      float* out = dst + 16 * half;
      if (trans)  // op(B)[k][j] = b[j * ldb + k]: each column is contiguous in K.
        pack_rows_contiguous_in_k(b + j * ldb, ldb, width, kc, 0xFFFF, kAvx512NR, out);
      else
        pack_rows_across_k(b + j, ldb, width, kc, 0xFFFF, kAvx512NR, out);
    }
  }
}

template <bool STREAM>
PIXGRAD_AVX512_BF16 inline __attribute__((always_inline)) void micro_bf16_tile(
    int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t m, int64_t n,
    float alpha, float beta) {
  __m512 acc0[kAvx512MR], acc1[kAvx512MR];
#pragma GCC unroll 14
  for (int i = 0; i < kAvx512MR; ++i) acc0[i] = acc1[i] = _mm512_setzero_ps();
  const int64_t pairs = pairs_of(kc);
  for (int64_t p = 0; p < pairs; ++p, a += kAvx512MR, b += kAvx512NR) {
    const __m512bh b0 = reinterpret_cast<__m512bh>(_mm512_load_ps(b));
    const __m512bh b1 = reinterpret_cast<__m512bh>(_mm512_load_ps(b + 16));
#pragma GCC unroll 14
    for (int i = 0; i < kAvx512MR; ++i) {
      // A broadcast moves the pair's bits unchanged.
      const __m512bh ai = reinterpret_cast<__m512bh>(_mm512_set1_ps(a[i]));
      acc0[i] = _mm512_dpbf16_ps(acc0[i], ai, b0);
      acc1[i] = _mm512_dpbf16_ps(acc1[i], ai, b1);
    }
  }
  detail::store_tile<kAvx512MR, STREAM>(acc0, acc1, c, ldc, m, n, alpha, beta);
}

PIXGRAD_AVX512_BF16 void micro_bf16(int64_t kc, const float* a, const float* b, float* c,
                                    int64_t ldc, int64_t m, int64_t n, float alpha, float beta) {
  micro_bf16_tile<false>(kc, a, b, c, ldc, m, n, alpha, beta);
}

PIXGRAD_AVX512_BF16 void micro_stream_bf16(int64_t kc, const float* a, const float* b, float* c,
                                           int64_t ldc, int64_t, int64_t, float alpha, float) {
  micro_bf16_tile<true>(kc, a, b, c, ldc, kAvx512MR, kAvx512NR, alpha, 0.0f);
}

// KC counts values, so 512 keeps the packed B micro-panel at the FP32
// kernel's 32 KiB (256 pairs x 32 words) and the A block at its L2 size.
const detail::GemmKernel& bf16_kernel() {
  static const detail::GemmKernel kernel{
      kAvx512MR,   kAvx512NR,       168,     512, 4096, pack_a_bf16, pack_b_bf16, micro_bf16,
      nullptr,     micro_stream_bf16,
      detail::sgemm_kernel(SgemmIsa::Avx512).skinny};
  return kernel;
}
#endif  // PIXGRAD_X86

}  // namespace

Bf16Availability gemm_bf16_availability() {
  // Read once; a bad value throws on every call (a throwing initialiser
  // leaves the static to be tried again).
  static const Bf16Availability availability = [] {
    const char* setting = std::getenv("PIXGRAD_CPU_BF16");
    const std::string value = setting ? setting : "";
    if (value != "" && value != "0" && value != "1")
      throw std::invalid_argument("PIXGRAD_CPU_BF16: unknown '" + value + "' (expected 0 or 1)");
    bool present = false;
#ifdef PIXGRAD_X86
    present = sgemm_isa_supported(SgemmIsa::Avx512) && __builtin_cpu_supports("avx512bf16");
#endif
    if (!present) return Bf16Availability::Missing;
    return value == "0" ? Bf16Availability::Hidden : Bf16Availability::Available;
  }();
  return availability;
}

bool gemm_bf16_supported() { return gemm_bf16_availability() == Bf16Availability::Available; }

bool gemm_bf16_rounds(bool trans_a, int64_t M, int64_t N) {
  return M > detail::kSkinnyMax && N > detail::kSkinnyMax && !(trans_a && N <= kFp32MaxColumns);
}

namespace {

void require_bf16() {
  if (!gemm_bf16_supported())
    throw std::invalid_argument(gemm_bf16_availability() == Bf16Availability::Hidden
                                    ? "gemm_bf16: PIXGRAD_CPU_BF16=0 hides AVX-512 BF16"
                                    : "gemm_bf16: this CPU has no AVX-512 BF16 (avx512_bf16)");
}

}  // namespace

void gemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
               int64_t ldc) {
  require_bf16();
  if (!gemm_bf16_rounds(trans_a, M, N))
    return sgemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#ifdef PIXGRAD_X86
  detail::gemm_with(bf16_kernel(), trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C,
                    ldc);
#endif
}

void gemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               const float* A, int64_t lda, const MatrixSource& B, float beta, float* C,
               int64_t ldc) {
  require_bf16();
  if (!gemm_bf16_rounds(trans_a, M, N))
    return sgemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, beta, C, ldc);
#ifdef PIXGRAD_X86
  detail::gemm_with(bf16_kernel(), trans_a, trans_b, M, N, K, alpha, A, lda, B, beta, C, ldc);
#endif
}

}  // namespace pixgrad::kernels::cpu
