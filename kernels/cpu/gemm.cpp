// SGEMM, row-major: C = alpha * op(A) * op(B) + beta * C.
//
// Every C[i][j] is a K-long dot product, so the work is 2*M*N*K flops against
// only M*K + K*N + M*N distinct values. A naive loop is memory bound; this
// follows the BLIS decomposition to make it compute bound instead:
//
//   for jc (NC columns of C)            B block  KC x NC  -> shared, L3
//     for pc (KC of the K dimension)    pack B block into NR-wide column panels
//       for ic (MC rows of C)           A block  MC x KC  -> per thread, L2
//         pack A block into MR-tall row panels
//         for jr (NR columns)           B micro-panel KC x NR stays in L1
//           for ir (MR rows)            micro-kernel: MR x NR tile of C in registers
//
// Packing copies each block once into the exact order the micro-kernel reads
// it (unit stride, aligned, zero-padded to whole MR/NR tiles), so the inner
// loop never branches on edges or strides, and transposed operands cost only a
// transposition during packing. The micro-kernel keeps the whole MR x NR tile
// of C in registers across the KC loop: per k it loads one NR-vector of B,
// broadcasts MR scalars of A and issues MR*NR/width FMAs. With AVX-512 the
// tile is 14 x 32 (28 zmm accumulators + 2 B vectors + 1 broadcast = 31 of 32
// registers), with AVX2 it is 6 x 16 (12 + 2 + 1 of 16 ymm).
//
// Threads split the C block of each (jc, pc) step on a tm x tn grid chosen
// from the shape: tall problems split rows (each thread packs its own A rows),
// wide ones split the NR panels (e.g. M=64, N=16384), so both cores work even
// when one dimension is a single tile. All threads pack disjoint panels of the
// shared B block, then meet at a barrier before using it. B is packed as many
// KC slices at a time as fit in 8 MiB, so the team meets twice per group of
// slices rather than twice per slice: when another process shares the cores,
// each barrier can cost a whole scheduler time slice.
//
// Three departures from the textbook loop, all for the U-Net's shapes:
//  - When a thread's A block feeds only one or two NR panels (N <= 64, the
//    8x8..16x16 bottleneck layers with K = 8192), the transposing pack costs
//    as much as the FMAs it feeds; the AVX-512 micro-kernel then broadcasts
//    straight from A (14 row streams, which the L1 serves fine).
//  - A C that is written once (one K slice, beta 0) and is larger than half
//    the L3 (backward-weight of the bottleneck layers: a 16-32 MiB gradient
//    from K = 1..4) goes out with non-temporal stores, skipping the
//    read-for-ownership of every line.
//  - Very skinny products (N or M of at most 8, e.g. the 2x2 and 1x1 layers)
//    would waste most of a 32-wide tile and are bound by streaming the big
//    operand anyway; they take a dot-product / axpy path that reads the big
//    matrix once, without packing it, prefetching ahead of the hardware.
//
// The SIMD code is compiled per function with target attributes and chosen at
// run time, so the library itself stays baseline x86-64.

#include <pixgrad/kernels/cpu/gemm.h>
#include <pixgrad/kernels/cpu/gemm_driver.h>

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include <pixgrad/kernels/cpu/gemm_avx512_common.h>

#ifdef PIXGRAD_X86
#define PIXGRAD_AVX2 __attribute__((target("avx2,fma")))
#endif

namespace pixgrad::kernels::cpu {
namespace {

using detail::GemmKernel;
using detail::kSkinnyMax;
#ifdef PIXGRAD_X86
using detail::kAll;
using detail::shuffle_lanes;
using detail::store_tile;
using detail::tail_mask;
using detail::transpose16;
#endif

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// Growable, 64-byte aligned scratch memory; one per calling thread, freed at
// thread exit.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer() { std::free(data_); }

  float* get(int64_t count) {
    const auto bytes = static_cast<size_t>(round_up(std::max<int64_t>(count, 1) * 4, 64));
    if (bytes > bytes_) {
      std::free(data_);
      data_ = static_cast<float*>(std::aligned_alloc(64, bytes));
      bytes_ = data_ ? bytes : 0;
      if (!data_) throw std::bad_alloc();
    }
    return data_;
  }

 private:
  float* data_ = nullptr;
  size_t bytes_ = 0;
};

thread_local AlignedBuffer tls_workspace;

// At most this many NR panels per A block: read A in place instead of packing.
constexpr int64_t kDirectPanels = 2;

// ---------------------------------------------------------------------------
// Portable code: generic packing, micro-kernel and skinny kernel. The
// templates are also instantiated inside target-attributed wrappers, where the
// compiler vectorises them for that ISA.

template <int MR>
inline __attribute__((always_inline)) void pack_a_generic(const float* a, int64_t lda, bool trans,
                                                          int64_t mc, int64_t kc, float* dst) {
  for (int64_t i0 = 0; i0 < mc; i0 += MR, dst += MR * kc) {
    const int64_t rows = std::min<int64_t>(MR, mc - i0);
    for (int64_t k = 0; k < kc; ++k) {
      if (rows == MR) {
        for (int r = 0; r < MR; ++r)
          dst[k * MR + r] = trans ? a[k * lda + i0 + r] : a[(i0 + r) * lda + k];
      } else {
        for (int r = 0; r < MR; ++r)
          dst[k * MR + r] = r >= rows ? 0.0f : trans ? a[k * lda + i0 + r] : a[(i0 + r) * lda + k];
      }
    }
  }
}

template <int NR>
inline __attribute__((always_inline)) void pack_b_generic(const float* b, int64_t ldb, bool trans,
                                                          int64_t kc, int64_t nc, float* dst) {
  for (int64_t j0 = 0; j0 < nc; j0 += NR, dst += NR * kc) {
    const int64_t cols = std::min<int64_t>(NR, nc - j0);
    for (int64_t k = 0; k < kc; ++k) {
      if (cols == NR) {
        for (int j = 0; j < NR; ++j)
          dst[k * NR + j] = trans ? b[(j0 + j) * ldb + k] : b[k * ldb + j0 + j];
      } else {
        for (int j = 0; j < NR; ++j)
          dst[k * NR + j] = j >= cols ? 0.0f : trans ? b[(j0 + j) * ldb + k] : b[k * ldb + j0 + j];
      }
    }
  }
}

template <int MR, int NR>
inline __attribute__((always_inline)) void micro_generic(int64_t kc, const float* a,
                                                         const float* b, float* c, int64_t ldc,
                                                         int64_t m, int64_t n, float alpha,
                                                         float beta) {
  float acc[MR][NR] = {};
  for (int64_t k = 0; k < kc; ++k, a += MR, b += NR)
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i][j] += a[i] * b[j];
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      float& out = c[i * ldc + j];
      out = beta == 0.0f ? alpha * acc[i][j] : alpha * acc[i][j] + beta * out;
    }
  }
}

inline __attribute__((always_inline)) void store_skinny(float* out, float value, float alpha,
                                                        float beta) {
  *out = beta == 0.0f ? alpha * value : alpha * value + beta * *out;
}

// C[i][j] = sum_k op(A)[i][k] * bt[j][k]. Without transposition a row of A is
// contiguous, so each output is a dot product over k; with it, A[k][i0..] is
// contiguous and the update is an axpy along i.
inline __attribute__((always_inline)) void skinny_generic(bool trans_a, int64_t i0, int64_t i1,
                                                          int64_t n, int64_t K, float alpha,
                                                          const float* A, int64_t lda,
                                                          const float* bt, float beta, float* C,
                                                          int64_t rs_c, int64_t cs_c) {
  if (!trans_a) {
    for (int64_t i = i0; i < i1; ++i) {
      const float* arow = A + i * lda;
      for (int64_t j = 0; j < n; ++j) {
        const float* brow = bt + j * K;
        // Independent partial sums, so the loop vectorises without reassociation.
        constexpr int kLanes = 16;
        float lanes[kLanes] = {};
        int64_t k = 0;
        for (; k + kLanes <= K; k += kLanes)
          for (int l = 0; l < kLanes; ++l) lanes[l] += arow[k + l] * brow[k + l];
        float sum = 0.0f;
        for (float lane : lanes) sum += lane;
        for (; k < K; ++k) sum += arow[k] * brow[k];
        store_skinny(C + i * rs_c + j * cs_c, sum, alpha, beta);
      }
    }
    return;
  }
  constexpr int64_t kChunk = 64;
  for (int64_t ib = i0; ib < i1; ib += kChunk) {
    const int64_t len = std::min(kChunk, i1 - ib);
    float acc[kSkinnyMax][kChunk] = {};
    for (int64_t k = 0; k < K; ++k) {
      const float* arow = A + k * lda + ib;
      for (int64_t j = 0; j < n; ++j) {
        const float bv = bt[j * K + k];
        for (int64_t i = 0; i < len; ++i) acc[j][i] += arow[i] * bv;
      }
    }
    for (int64_t j = 0; j < n; ++j)
      for (int64_t i = 0; i < len; ++i)
        store_skinny(C + (ib + i) * rs_c + j * cs_c, acc[j][i], alpha, beta);
  }
}

constexpr int kScalarMR = 4;
constexpr int kScalarNR = 8;

void pack_a_scalar(const float* a, int64_t lda, bool trans, int64_t mc, int64_t kc, float* dst) {
  pack_a_generic<kScalarMR>(a, lda, trans, mc, kc, dst);
}
void pack_b_scalar(const float* b, int64_t ldb, bool trans, int64_t kc, int64_t nc, float* dst) {
  pack_b_generic<kScalarNR>(b, ldb, trans, kc, nc, dst);
}
void micro_scalar(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t m,
                  int64_t n, float alpha, float beta) {
  micro_generic<kScalarMR, kScalarNR>(kc, a, b, c, ldc, m, n, alpha, beta);
}
void skinny_scalar(bool trans_a, int64_t i0, int64_t i1, int64_t n, int64_t K, float alpha,
                   const float* A, int64_t lda, const float* bt, float beta, float* C,
                   int64_t rs_c, int64_t cs_c) {
  skinny_generic(trans_a, i0, i1, n, K, alpha, A, lda, bt, beta, C, rs_c, cs_c);
}

const GemmKernel kScalarKernel{kScalarMR, kScalarNR, 128, 256, 2048,
                               pack_a_scalar, pack_b_scalar, micro_scalar, nullptr, nullptr,
                               skinny_scalar};

#ifdef PIXGRAD_X86
// ---------------------------------------------------------------------------
// AVX2 + FMA: 6 x 16 tile in 12 ymm accumulators.

constexpr int kAvx2MR = 6;
constexpr int kAvx2NR = 16;

PIXGRAD_AVX2 void pack_a_avx2(const float* a, int64_t lda, bool trans, int64_t mc, int64_t kc,
                              float* dst) {
  pack_a_generic<kAvx2MR>(a, lda, trans, mc, kc, dst);
}
PIXGRAD_AVX2 void pack_b_avx2(const float* b, int64_t ldb, bool trans, int64_t kc, int64_t nc,
                              float* dst) {
  pack_b_generic<kAvx2NR>(b, ldb, trans, kc, nc, dst);
}

PIXGRAD_AVX2 void micro_avx2(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                             int64_t m, int64_t n, float alpha, float beta) {
  __m256 acc0[kAvx2MR], acc1[kAvx2MR];
#pragma GCC unroll 6
  for (int i = 0; i < kAvx2MR; ++i) acc0[i] = acc1[i] = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; ++k, a += kAvx2MR, b += kAvx2NR) {
    const __m256 b0 = _mm256_load_ps(b);
    const __m256 b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 6
    for (int i = 0; i < kAvx2MR; ++i) {
      const __m256 ai = _mm256_broadcast_ss(a + i);
      acc0[i] = _mm256_fmadd_ps(ai, b0, acc0[i]);
      acc1[i] = _mm256_fmadd_ps(ai, b1, acc1[i]);
    }
  }
  const __m256 va = _mm256_set1_ps(alpha);
  const __m256 vb = _mm256_set1_ps(beta);
  if (m == kAvx2MR && n == kAvx2NR) {
#pragma GCC unroll 6
    for (int i = 0; i < kAvx2MR; ++i) {
      float* row = c + i * ldc;
      __m256 r0 = _mm256_mul_ps(va, acc0[i]);
      __m256 r1 = _mm256_mul_ps(va, acc1[i]);
      if (beta != 0.0f) {
        r0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(row), r0);
        r1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(row + 8), r1);
      }
      _mm256_storeu_ps(row, r0);
      _mm256_storeu_ps(row + 8, r1);
    }
    return;
  }
  alignas(32) float tile[kAvx2MR][kAvx2NR];
#pragma GCC unroll 6
  for (int i = 0; i < kAvx2MR; ++i) {
    _mm256_store_ps(tile[i], acc0[i]);
    _mm256_store_ps(tile[i] + 8, acc1[i]);
  }
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) store_skinny(c + i * ldc + j, tile[i][j], alpha, beta);
}

PIXGRAD_AVX2 void skinny_avx2(bool trans_a, int64_t i0, int64_t i1, int64_t n, int64_t K,
                              float alpha, const float* A, int64_t lda, const float* bt,
                              float beta, float* C, int64_t rs_c, int64_t cs_c) {
  skinny_generic(trans_a, i0, i1, n, K, alpha, A, lda, bt, beta, C, rs_c, cs_c);
}

const GemmKernel kAvx2Kernel{kAvx2MR, kAvx2NR, 144, 256, 2048,
                             pack_a_avx2, pack_b_avx2, micro_avx2, nullptr, nullptr,
                             skinny_avx2};

// ---------------------------------------------------------------------------
// AVX-512: 14 x 32 tile in 28 zmm accumulators.

constexpr int kAvx512MR = detail::kAvx512MR;
constexpr int kAvx512NR = detail::kAvx512NR;

PIXGRAD_AVX512 inline float horizontal_sum(__m512 v) {
  v = _mm512_add_ps(v, shuffle_lanes<0x4E>(v, v));
  v = _mm512_add_ps(v, shuffle_lanes<0xB1>(v, v));
  v = _mm512_add_ps(v, _mm512_mask_permute_ps(v, kAll, v, 0x4E));
  v = _mm512_add_ps(v, _mm512_mask_permute_ps(v, kAll, v, 0xB1));
  return _mm512_cvtss_f32(v);
}

PIXGRAD_AVX512 void pack_a_avx512(const float* a, int64_t lda, bool trans, int64_t mc,
                                  int64_t kc, float* dst) {
  constexpr __mmask16 kPanelMask = (1u << kAvx512MR) - 1u;
  for (int64_t i0 = 0; i0 < mc; i0 += kAvx512MR, dst += kAvx512MR * kc) {
    const int64_t rows = std::min<int64_t>(kAvx512MR, mc - i0);
    // A often comes straight from DRAM (a weight read once per call) in short
    // row segments the hardware prefetcher does not pick up: fetch ahead by
    // hand, 16 rows of A^T or the next panel's rows of A.
    if (trans) {
      const __mmask16 load_mask = tail_mask(rows);
      for (int64_t k = 0; k < kc; ++k) {
        const float* ahead = a + (k + 16) * lda + i0;
        _mm_prefetch(reinterpret_cast<const char*>(ahead), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(ahead + kAvx512MR - 1), _MM_HINT_T0);
        _mm512_mask_storeu_ps(dst + k * kAvx512MR, kPanelMask,
                              _mm512_maskz_loadu_ps(load_mask, a + k * lda + i0));
      }
      continue;
    }
    const float* src = a + i0 * lda;
    const int64_t next_rows = std::clamp<int64_t>(mc - i0 - kAvx512MR, 0, kAvx512MR);
    int64_t k = 0;
    for (; k + 16 <= kc; k += 16) {
      for (int64_t i = 0; i < next_rows; ++i)
        _mm_prefetch(reinterpret_cast<const char*>(src + (kAvx512MR + i) * lda + k),
                     _MM_HINT_T0);
      __m512 r[16];
#pragma GCC unroll 16
      for (int i = 0; i < 16; ++i)
        r[i] = i < rows ? _mm512_loadu_ps(src + i * lda + k) : _mm512_setzero_ps();
      transpose16(r);
#pragma GCC unroll 16
      for (int i = 0; i < 16; ++i)
        _mm512_mask_storeu_ps(dst + (k + i) * kAvx512MR, kPanelMask, r[i]);
    }
    for (; k < kc; ++k)
      for (int64_t i = 0; i < kAvx512MR; ++i)
        dst[k * kAvx512MR + i] = i < rows ? src[i * lda + k] : 0.0f;
  }
}

PIXGRAD_AVX512 void pack_b_avx512(const float* b, int64_t ldb, bool trans, int64_t kc,
                                  int64_t nc, float* dst) {
  for (int64_t j0 = 0; j0 < nc; j0 += kAvx512NR, dst += kAvx512NR * kc) {
    const int64_t cols = std::min<int64_t>(kAvx512NR, nc - j0);
    if (!trans) {
      const __mmask16 m0 = tail_mask(cols);
      const __mmask16 m1 = tail_mask(cols - 16);
      const float* src = b + j0;
      for (int64_t k = 0; k < kc; ++k) {
        _mm512_store_ps(dst + k * kAvx512NR, _mm512_maskz_loadu_ps(m0, src + k * ldb));
        _mm512_store_ps(dst + k * kAvx512NR + 16, _mm512_maskz_loadu_ps(m1, src + k * ldb + 16));
      }
      continue;
    }
    for (int half = 0; half < 2; ++half) {
      const int64_t rows = std::clamp<int64_t>(cols - 16 * half, 0, 16);
      const float* src = b + (j0 + 16 * half) * ldb;
      float* out = dst + 16 * half;
      int64_t k = 0;
      for (; k + 16 <= kc; k += 16) {
        __m512 r[16];
#pragma GCC unroll 16
        for (int i = 0; i < 16; ++i)
          r[i] = i < rows ? _mm512_loadu_ps(src + i * ldb + k) : _mm512_setzero_ps();
        transpose16(r);
#pragma GCC unroll 16
        for (int i = 0; i < 16; ++i) _mm512_store_ps(out + (k + i) * kAvx512NR, r[i]);
      }
      for (; k < kc; ++k)
        for (int64_t i = 0; i < 16; ++i) out[k * kAvx512NR + i] = i < rows ? src[i * ldb + k] : 0.0f;
    }
  }
}

// Where the micro-kernel finds element (i, k) of its MR x kc slice of op(A):
// a packed panel, or A itself when packing would cost more than it saves.
struct PackedPanel {
  const float* a;
  float at(int64_t k, int i) const { return a[k * kAvx512MR + i]; }
};
struct RowsOfA {
  const float* a;
  int64_t lda;
  float at(int64_t k, int i) const { return a[i * lda + k]; }
};
struct ColumnsOfA {
  const float* a;
  int64_t lda;
  float at(int64_t k, int i) const { return a[k * lda + i]; }
};

template <bool STREAM = false, typename ASource>
PIXGRAD_AVX512 inline __attribute__((always_inline)) void micro_avx512_tile(
    int64_t kc, ASource a, const float* b, float* c, int64_t ldc, int64_t m, int64_t n,
    float alpha, float beta) {
  __m512 acc0[kAvx512MR], acc1[kAvx512MR];
#pragma GCC unroll 14
  for (int i = 0; i < kAvx512MR; ++i) acc0[i] = acc1[i] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; ++k, b += kAvx512NR) {
    const __m512 b0 = _mm512_load_ps(b);
    const __m512 b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 14
    for (int i = 0; i < kAvx512MR; ++i) {
      const __m512 ai = _mm512_set1_ps(a.at(k, i));
      acc0[i] = _mm512_fmadd_ps(ai, b0, acc0[i]);
      acc1[i] = _mm512_fmadd_ps(ai, b1, acc1[i]);
    }
  }
  store_tile<kAvx512MR, STREAM>(acc0, acc1, c, ldc, m, n, alpha, beta);
}

PIXGRAD_AVX512 void micro_avx512(int64_t kc, const float* a, const float* b, float* c,
                                 int64_t ldc, int64_t m, int64_t n, float alpha, float beta) {
  micro_avx512_tile(kc, PackedPanel{a}, b, c, ldc, m, n, alpha, beta);
}

// Full tile, beta == 0, 64-byte aligned rows: non-temporal stores, for a C
// far larger than the caches that is written once (no read-for-ownership).
PIXGRAD_AVX512 void micro_stream_avx512(int64_t kc, const float* a, const float* b, float* c,
                                        int64_t ldc, int64_t, int64_t, float alpha, float) {
  micro_avx512_tile<true>(kc, PackedPanel{a}, b, c, ldc, kAvx512MR, kAvx512NR, alpha, 0.0f);
}

PIXGRAD_AVX512 void micro_direct_avx512(int64_t kc, const float* a, int64_t lda, bool trans,
                                        const float* b, float* c, int64_t ldc, int64_t n,
                                        float alpha, float beta) {
  if (trans)
    micro_avx512_tile(kc, ColumnsOfA{a, lda}, b, c, ldc, kAvx512MR, n, alpha, beta);
  else
    micro_avx512_tile(kc, RowsOfA{a, lda}, b, c, ldc, kAvx512MR, n, alpha, beta);
}

// Software prefetch distances of the streaming (skinny) kernels.
constexpr int64_t kPrefetchFloats = 256;
constexpr int64_t kPrefetchRows = 8;

// Dot-product form for !trans_a: 4 rows of A against COLS rows of bt at once,
// so each bt vector loaded is used 4 times and each A vector COLS times.
template <int COLS>
PIXGRAD_AVX512 void skinny_rows_tile(int64_t i, int64_t rows, int64_t j0, int64_t K, float alpha,
                                     const float* A, int64_t lda, const float* bt, float beta,
                                     float* C, int64_t rs_c, int64_t cs_c) {
  constexpr int kRows = 4;
  const float* arow[kRows];
  const float* brow[COLS];
  __m512 acc[kRows][COLS];
#pragma GCC unroll 4
  for (int r = 0; r < kRows; ++r) {
    arow[r] = A + (i + std::min<int64_t>(r, rows - 1)) * lda;
#pragma GCC unroll 4
    for (int j = 0; j < COLS; ++j) acc[r][j] = _mm512_setzero_ps();
  }
#pragma GCC unroll 4
  for (int j = 0; j < COLS; ++j) brow[j] = bt + (j0 + j) * K;
  for (int64_t k = 0; k < K; k += 16) {
    const __mmask16 mask = tail_mask(K - k);
    __m512 bv[COLS];
#pragma GCC unroll 4
    for (int j = 0; j < COLS; ++j) bv[j] = _mm512_maskz_loadu_ps(mask, brow[j] + k);
#pragma GCC unroll 4
    for (int r = 0; r < kRows; ++r) {
      // Four concurrent row streams outrun the hardware prefetcher; asking
      // 1 KiB ahead roughly doubles the DRAM bandwidth reached.
      _mm_prefetch(reinterpret_cast<const char*>(arow[r] + k + kPrefetchFloats), _MM_HINT_T0);
      const __m512 av = _mm512_maskz_loadu_ps(mask, arow[r] + k);
#pragma GCC unroll 4
      for (int j = 0; j < COLS; ++j) acc[r][j] = _mm512_fmadd_ps(av, bv[j], acc[r][j]);
    }
  }
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < COLS; ++j)
      store_skinny(C + (i + r) * rs_c + (j0 + j) * cs_c, horizontal_sum(acc[r][j]), alpha,
                   beta);
}

// Axpy form for trans_a: A[k][i..] is contiguous, so C[i..][j] += A[k][i..] *
// bt[j][k]. Streaming long row segments (2 KiB, STEP rows at a time) keeps
// DRAM reads sequential; the accumulators for the segment live in L1.
constexpr int64_t kColsWidth = 512;

template <int COLS, int STEP>
PIXGRAD_AVX512 inline void skinny_cols_step(int64_t k, int64_t i, int64_t len, int64_t j0,
                                            int64_t K, const float* A, int64_t lda,
                                            const float* bt, float (*acc)[kColsWidth]) {
  const float* arow[STEP];
  __m512 bv[STEP][COLS];
#pragma GCC unroll 4
  for (int r = 0; r < STEP; ++r) {
    arow[r] = A + (k + r) * lda + i;
#pragma GCC unroll 4
    for (int j = 0; j < COLS; ++j) bv[r][j] = _mm512_set1_ps(bt[(j0 + j) * K + k + r]);
  }
  for (int64_t v = 0; v < len; v += 16) {
    const __mmask16 mask = tail_mask(len - v);
    __m512 sum[COLS];
#pragma GCC unroll 4
    for (int j = 0; j < COLS; ++j) sum[j] = _mm512_load_ps(acc[j] + v);
#pragma GCC unroll 4
    for (int r = 0; r < STEP; ++r) {
      _mm_prefetch(reinterpret_cast<const char*>(arow[r] + kPrefetchRows * lda + v), _MM_HINT_T0);
      const __m512 av = _mm512_maskz_loadu_ps(mask, arow[r] + v);
#pragma GCC unroll 4
      for (int j = 0; j < COLS; ++j) sum[j] = _mm512_fmadd_ps(av, bv[r][j], sum[j]);
    }
#pragma GCC unroll 4
    for (int j = 0; j < COLS; ++j) _mm512_store_ps(acc[j] + v, sum[j]);
  }
}

template <int COLS>
PIXGRAD_AVX512 void skinny_cols_tile(int64_t i, int64_t len, int64_t j0, int64_t K, float alpha,
                                     const float* A, int64_t lda, const float* bt, float beta,
                                     float* C, int64_t rs_c, int64_t cs_c) {
  alignas(64) float acc[COLS][kColsWidth];
  for (int j = 0; j < COLS; ++j) std::fill(acc[j], acc[j] + round_up(len, 16), 0.0f);
  int64_t k = 0;
  for (; k + 4 <= K; k += 4) skinny_cols_step<COLS, 4>(k, i, len, j0, K, A, lda, bt, acc);
  for (; k < K; ++k) skinny_cols_step<COLS, 1>(k, i, len, j0, K, A, lda, bt, acc);
  for (int64_t j = 0; j < COLS; ++j)
    for (int64_t r = 0; r < len; ++r)
      store_skinny(C + (i + r) * rs_c + (j0 + j) * cs_c, acc[j][r], alpha, beta);
}

using SkinnyTileFn = void (*)(int64_t, int64_t, int64_t, int64_t, float, const float*, int64_t,
                              const float*, float, float*, int64_t, int64_t);

PIXGRAD_AVX512 void skinny_avx512(bool trans_a, int64_t i0, int64_t i1, int64_t n, int64_t K,
                                  float alpha, const float* A, int64_t lda, const float* bt,
                                  float beta, float* C, int64_t rs_c, int64_t cs_c) {
  static constexpr SkinnyTileFn kRowTiles[4] = {skinny_rows_tile<1>, skinny_rows_tile<2>,
                                                skinny_rows_tile<3>, skinny_rows_tile<4>};
  static constexpr SkinnyTileFn kColTiles[4] = {skinny_cols_tile<1>, skinny_cols_tile<2>,
                                                skinny_cols_tile<3>, skinny_cols_tile<4>};
  const int64_t step = trans_a ? kColsWidth : 4;
  for (int64_t i = i0; i < i1; i += step) {
    const int64_t len = std::min(step, i1 - i);
    for (int64_t j0 = 0; j0 < n; j0 += 4) {
      const int64_t cols = std::min<int64_t>(4, n - j0);
      (trans_a ? kColTiles : kRowTiles)[cols - 1](i, len, j0, K, alpha, A, lda, bt, beta, C,
                                                  rs_c, cs_c);
    }
  }
}

const GemmKernel kAvx512Kernel{kAvx512MR, kAvx512NR, 168, 256, 4096,
                               pack_a_avx512, pack_b_avx512, micro_avx512, micro_direct_avx512,
                               micro_stream_avx512, skinny_avx512};
#endif  // PIXGRAD_X86

// ---------------------------------------------------------------------------
// Drivers.

void scale_c(int64_t M, int64_t N, float beta, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i) {
    float* row = C + i * ldc;
    if (beta == 0.0f)
      std::fill(row, row + N, 0.0f);
    else if (beta != 1.0f)
      for (int64_t j = 0; j < N; ++j) row[j] *= beta;
  }
}

// Splits `count` items into `parts` contiguous ranges; returns part `index`.
void split_range(int64_t count, int64_t parts, int64_t index, int64_t& begin, int64_t& end) {
  begin = count * index / parts;
  end = count * (index + 1) / parts;
}

// Threads as a tm x tn grid over (MR-row tiles, NR-column panels): minimise the
// largest per-thread tile count; on ties split rows, which duplicates no packing.
void choose_grid(int threads, int64_t tiles_m, int64_t tiles_n, int& tm, int& tn) {
  tm = threads;
  tn = 1;
  int64_t best = -1;
  for (int d = threads; d >= 1; --d) {
    if (threads % d != 0) continue;
    const int64_t cost = ceil_div(tiles_m, d) * ceil_div(tiles_n, threads / d);
    if (best < 0 || cost < best) {
      best = cost;
      tm = d;
      tn = threads / d;
    }
  }
}

struct GemmProblem {
  bool trans_a, trans_b;
  int64_t M, N, K;
  float alpha;
  const float* A;
  int64_t lda;
  const float* B;
  int64_t ldb;
  float beta;
  float* C;
  int64_t ldc;
  const MatrixSource* b_source = nullptr;  // B made on demand instead of B, ldb

  const float* a_at(int64_t row, int64_t col) const {
    return trans_a ? A + col * lda + row : A + row * lda + col;
  }
  const float* b_at(int64_t row, int64_t col) const {
    return trans_b ? B + col * ldb + row : B + row * ldb + col;
  }
};

// Packed B is built a group of KC slices at a time, as many as fit this many
// floats (8 MiB, well inside L3): the team synchronises twice per group, not
// twice per slice, which matters most when another process steals a core
// and every barrier can cost a scheduler time slice.
constexpr int64_t kPackedBFloats = int64_t{1} << 21;

// C of at least this many floats (16 MiB, half the L3) is stored with
// streaming stores when it is written in one pass.
constexpr int64_t kStreamFloats = int64_t{1} << 22;

struct BlockPlan {
  int64_t kc_max, nc_max;  // KC and NC block sizes
  int64_t slices_per_group;
  int64_t b_floats;        // shared packed-B buffer
  int64_t a_floats;        // per-thread packed-A buffer
  int64_t source_floats;   // per-thread block of a made B (0 for B in memory)
};

BlockPlan plan_blocks(const GemmKernel& kern, const GemmProblem& p) {
  BlockPlan plan{};
  plan.kc_max = std::min(p.K, kern.kc);
  plan.nc_max = std::min(round_up(p.N, kern.nr), kern.nc);
  const int64_t slice = plan.kc_max * plan.nc_max;
  plan.slices_per_group =
      std::clamp<int64_t>(kPackedBFloats / slice, 1, ceil_div(p.K, plan.kc_max));
  plan.b_floats = plan.slices_per_group * slice;
  plan.a_floats = round_up(kern.mc + kern.mr, kern.mr) * plan.kc_max;
  plan.source_floats = p.b_source ? plan.kc_max * kern.nr : 0;
  return plan;
}

// Packs op(B)[pc, pc + kc) x [n0, n0 + n) of a made B into panels at dst,
// one NR panel at a time through `block` (kc x NR floats, at most 64 KiB): the
// panel is packed from L2 right after it is made.
void pack_b_from_source(const GemmKernel& kern, const GemmProblem& p, int64_t pc, int64_t kc,
                        int64_t n0, int64_t n, float* block, float* dst) {
  const MatrixSource& source = *p.b_source;
  for (int64_t j = 0; j < n; j += kern.nr, dst += kern.nr * kc) {
    const int64_t width = std::min(kern.nr, n - j);
    if (p.trans_b) {  // stored N x K: rows are columns of op(B)
      source.fill(source.context, n0 + j, width, pc, kc, block);
      kern.pack_b(block, kc, true, kc, width, dst);
    } else {
      source.fill(source.context, pc, kc, n0 + j, width, block);
      kern.pack_b(block, width, false, kc, width, dst);
    }
  }
}

// One thread's share of the blocked product. Every thread of the team runs
// the same jc / slice-group loops and packs its share of the group's B panels.
void blocked_thread(const GemmKernel& kern, const GemmProblem& p, const BlockPlan& plan, int tid,
                    int threads, float* b_pack, float* a_pack, float* source_block) {
  const int64_t mr = kern.mr, nr = kern.nr;
  const int64_t kc_max = plan.kc_max, nc_max = plan.nc_max;
  int tm, tn;
  choose_grid(threads, ceil_div(p.M, mr), ceil_div(std::min(p.N, nc_max), nr), tm, tn);
  const int ti = tid / tn, tj = tid % tn;
  int64_t tile_begin, tile_end;
  split_range(ceil_div(p.M, mr), tm, ti, tile_begin, tile_end);
  const int64_t row_begin = tile_begin * mr, row_end = std::min(p.M, tile_end * mr);
  const int64_t my_rows = row_end - row_begin;
  const int64_t mc_max =
      my_rows > 0 ? round_up(ceil_div(my_rows, ceil_div(my_rows, kern.mc)), mr) : mr;
  const int64_t slices = ceil_div(p.K, kc_max);
  // A C written once (single K slice, beta 0) and too big to stay cached.
  const bool stream = kern.micro_stream && slices == 1 && p.beta == 0.0f &&
                      p.M * p.N >= kStreamFloats && p.ldc % 16 == 0 &&
                      reinterpret_cast<uintptr_t>(p.C) % 64 == 0;

  for (int64_t jc = 0; jc < p.N; jc += nc_max) {
    const int64_t nc = std::min(nc_max, p.N - jc);
    const int64_t panels = ceil_div(nc, nr);
    const int64_t slice_floats = kc_max * panels * nr;
    int64_t qb, qe;
    split_range(panels, tn, tj, qb, qe);
    const bool direct_a = kern.micro_direct && qe - qb <= kDirectPanels;

    for (int64_t s0 = 0; s0 < slices; s0 += plan.slices_per_group) {
      const int64_t s1 = std::min(slices, s0 + plan.slices_per_group);
      // This thread's share of the group's (slice, panel) items.
      int64_t wb, we;
      split_range((s1 - s0) * panels, threads, tid, wb, we);
      for (int64_t s = s0; s < s1; ++s) {
        const int64_t first = std::max(wb - (s - s0) * panels, int64_t{0});
        const int64_t last = std::min(we - (s - s0) * panels, panels);
        if (first >= last) continue;
        const int64_t pc = s * kc_max, kc = std::min(kc_max, p.K - pc);
        const int64_t cols = std::min(nc, last * nr) - first * nr;
        float* dst = b_pack + (s - s0) * slice_floats + first * nr * kc;
        if (p.b_source)
          pack_b_from_source(kern, p, pc, kc, jc + first * nr, cols, source_block, dst);
        else
          kern.pack_b(p.b_at(pc, jc + first * nr), p.ldb, p.trans_b, kc, cols, dst);
      }
      if (threads > 1) {
#pragma omp barrier
      }
      for (int64_t s = s0; s < s1; ++s) {
        const int64_t pc = s * kc_max, kc = std::min(kc_max, p.K - pc);
        const float beta = pc == 0 ? p.beta : 1.0f;
        const float* b_slice = b_pack + (s - s0) * slice_floats;
        for (int64_t ic = row_begin; qb < qe && ic < row_end; ic += mc_max) {
          const int64_t mc = std::min(mc_max, row_end - ic);
          // Direct mode still packs a ragged last panel (it needs zero rows).
          const int64_t packed_from = direct_a ? mc / mr * mr : 0;
          if (packed_from < mc)
            kern.pack_a(p.a_at(ic + packed_from, pc), p.lda, p.trans_a, mc - packed_from, kc,
                        a_pack);
          for (int64_t q = qb; q < qe; ++q) {
            const int64_t jr = q * nr;
            const int64_t n = std::min(nr, nc - jr);
            const float* bp = b_slice + q * nr * kc;
            for (int64_t ir = 0; ir < mc; ir += mr) {
              float* c = p.C + (ic + ir) * p.ldc + jc + jr;
              if (ir < packed_from)
                kern.micro_direct(kc, p.a_at(ic + ir, pc), p.lda, p.trans_a, bp, c, p.ldc, n,
                                  p.alpha, beta);
              else if (stream && n == nr && mc - ir >= mr)
                kern.micro_stream(kc, a_pack + (ir - packed_from) * kc, bp, c, p.ldc, mr, nr,
                                  p.alpha, beta);
              else
                kern.micro(kc, a_pack + (ir - packed_from) * kc, bp, c, p.ldc,
                           std::min(mr, mc - ir), n, p.alpha, beta);
            }
          }
        }
      }
      if (threads > 1) {
#pragma omp barrier
      }
    }
  }
#ifdef PIXGRAD_X86
  if (stream) _mm_sfence();  // order the weakly-ordered streaming stores
#endif
}

void gemm_blocked(const GemmKernel& kern, const GemmProblem& p, int threads) {
  const BlockPlan plan = plan_blocks(kern, p);
  // Everything the team needs is allocated here, outside the parallel region.
  const int64_t per_thread = plan.a_floats + plan.source_floats;
  float* workspace = tls_workspace.get(plan.b_floats + threads * per_thread);
  const auto run = [&](int tid, int team) {
    float* own = workspace + plan.b_floats + tid * per_thread;
    blocked_thread(kern, p, plan, tid, team, workspace, own, own + plan.a_floats);
  };
  if (threads == 1) {
    run(0, 1);
    return;
  }
#pragma omp parallel num_threads(threads)
  run(omp_get_thread_num(), omp_get_num_threads());
}

// op(B) has n <= kSkinnyMax columns: copy it transposed (n x K, tiny) and let
// threads split the rows of C. rs_c/cs_c let the caller pass a transposed C.
void gemm_skinny(const GemmKernel& kern, bool trans_a, bool trans_b, int64_t M, int64_t n,
                 int64_t K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb,
                 float beta, float* C, int64_t rs_c, int64_t cs_c, int threads) {
  float* bt = tls_workspace.get(n * K);
  for (int64_t j = 0; j < n; ++j)
    for (int64_t k = 0; k < K; ++k) bt[j * K + k] = trans_b ? B[j * ldb + k] : B[k * ldb + j];
  // Row blocks of 64 keep the vector tails to the last block.
  const int64_t blocks = ceil_div(M, 64);
  threads = static_cast<int>(std::min<int64_t>(threads, blocks));
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    int64_t bb, be;
    split_range(blocks, omp_get_num_threads(), omp_get_thread_num(), bb, be);
    if (bb < be)
      kern.skinny(trans_a, bb * 64, std::min(M, be * 64), n, K, alpha, A, lda, bt, beta, C, rs_c,
                  cs_c);
  }
}

[[noreturn]] void bad_argument(const std::string& what, bool ta, bool tb, int64_t M, int64_t N,
                               int64_t K, int64_t lda, int64_t ldb, int64_t ldc) {
  throw std::invalid_argument("sgemm: " + what + " (trans_a=" + std::to_string(ta) +
                              ", trans_b=" + std::to_string(tb) + ", M=" + std::to_string(M) +
                              ", N=" + std::to_string(N) + ", K=" + std::to_string(K) +
                              ", lda=" + std::to_string(lda) + ", ldb=" + std::to_string(ldb) +
                              ", ldc=" + std::to_string(ldc) + ")");
}

}  // namespace

namespace detail {

const GemmKernel& sgemm_kernel(SgemmIsa isa) {
  switch (isa) {
#ifdef PIXGRAD_X86
    case SgemmIsa::Avx512:
      return kAvx512Kernel;
    case SgemmIsa::Avx2:
      return kAvx2Kernel;
#endif
    default:
      return kScalarKernel;
  }
}

namespace {

// The checks and trivial cases every product shares. Returns the team size for
// a product still to run, 0 when there is none (C already done).
int start_product(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                  int64_t lda, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M < 0 || N < 0 || K < 0)
    bad_argument("negative dimension", trans_a, trans_b, M, N, K, lda, ldb, ldc);
  if (lda < std::max<int64_t>(1, trans_a ? M : K) || ldb < std::max<int64_t>(1, trans_b ? K : N) ||
      ldc < std::max<int64_t>(1, N))
    bad_argument("leading dimension too small", trans_a, trans_b, M, N, K, lda, ldb, ldc);
  if (M == 0 || N == 0) return 0;
  if (K == 0 || alpha == 0.0f) {
    scale_c(M, N, beta, C, ldc);
    return 0;
  }
  // About a megaflop per thread pays for waking it.
  const double flops = 2.0 * static_cast<double>(M) * static_cast<double>(N) * K;
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  return static_cast<int>(std::clamp(flops / 1.0e6, 1.0, static_cast<double>(threads)));
}

bool is_skinny(int64_t M, int64_t N) { return (N <= kSkinnyMax && M >= N) || M <= kSkinnyMax; }

}  // namespace

void gemm_with(const GemmKernel& kern, bool trans_a, bool trans_b, int64_t M, int64_t N,
               int64_t K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb,
               float beta, float* C, int64_t ldc) {
  const int threads = start_product(trans_a, trans_b, M, N, K, alpha, lda, ldb, beta, C, ldc);
  if (threads == 0) return;
  if (N <= kSkinnyMax && M >= N) {
    gemm_skinny(kern, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, 1, threads);
    return;
  }
  if (M <= kSkinnyMax) {
    // C^T = op(B)^T op(A)^T: op(B)^T is op(B) read with the other transposition.
    gemm_skinny(kern, !trans_b, !trans_a, N, M, K, alpha, B, ldb, A, lda, beta, C, 1, ldc,
                threads);
    return;
  }
  gemm_blocked(kern,
               GemmProblem{trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc},
               threads);
}

void gemm_with(const GemmKernel& kern, bool trans_a, bool trans_b, int64_t M, int64_t N,
               int64_t K, float alpha, const float* A, int64_t lda, const MatrixSource& B,
               float beta, float* C, int64_t ldc) {
  // B as it would be stored, rows x cols.
  const int64_t rows = trans_b ? N : K, cols = trans_b ? K : N;
  const int64_t ldb = std::max<int64_t>(1, cols);
  const int threads = start_product(trans_a, trans_b, M, N, K, alpha, lda, ldb, beta, C, ldc);
  if (threads == 0) return;
  if (is_skinny(M, N)) {
    // The skinny paths read B in place; it is the small operand or read once.
    std::vector<float> whole(static_cast<size_t>(rows * cols));
    B.fill(B.context, 0, rows, 0, cols, whole.data());
    gemm_with(kern, trans_a, trans_b, M, N, K, alpha, A, lda, whole.data(), ldb, beta, C, ldc);
    return;
  }
  GemmProblem problem{trans_a, trans_b, M, N, K, alpha, A, lda, nullptr, ldb, beta, C, ldc};
  problem.b_source = &B;
  gemm_blocked(kern, problem, threads);
}

}  // namespace detail

bool sgemm_isa_supported(SgemmIsa isa) {
  switch (isa) {
    case SgemmIsa::Scalar:
      return true;
#ifdef PIXGRAD_X86
    case SgemmIsa::Avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case SgemmIsa::Avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw");
#endif
    default:
      return false;
  }
}

SgemmIsa sgemm_best_isa() {
  static const SgemmIsa best = [] {
    if (sgemm_isa_supported(SgemmIsa::Avx512)) return SgemmIsa::Avx512;
    if (sgemm_isa_supported(SgemmIsa::Avx2)) return SgemmIsa::Avx2;
    return SgemmIsa::Scalar;
  }();
  return best;
}

const char* sgemm_isa_name(SgemmIsa isa) {
  switch (isa) {
    case SgemmIsa::Avx512:
      return "avx512";
    case SgemmIsa::Avx2:
      return "avx2";
    case SgemmIsa::Scalar:
      return "scalar";
  }
  return "unknown";
}

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
           int64_t ldc) {
  detail::gemm_with(detail::sgemm_kernel(sgemm_best_isa()), trans_a, trans_b, M, N, K, alpha, A,
                    lda, B, ldb, beta, C, ldc);
}

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const MatrixSource& B, float beta, float* C, int64_t ldc) {
  detail::gemm_with(detail::sgemm_kernel(sgemm_best_isa()), trans_a, trans_b, M, N, K, alpha, A,
                    lda, B, beta, C, ldc);
}

void sgemm(SgemmIsa isa, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
           float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
           float* C, int64_t ldc) {
  if (!sgemm_isa_supported(isa))
    throw std::invalid_argument(std::string("sgemm: instruction set ") + sgemm_isa_name(isa) +
                                " is not supported by this CPU");
  detail::gemm_with(detail::sgemm_kernel(isa), trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb,
                    beta, C, ldc);
}

}  // namespace pixgrad::kernels::cpu
