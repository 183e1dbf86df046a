#pragma once

#include <cstdint>

namespace pixgrad::kernels::cpu {

// Row-major single-precision GEMM:
//   C[M x N] = alpha * op(A)[M x K] * op(B)[K x N] + beta * C
// op(A) = A^T when trans_a (A is then stored K x M with leading dimension lda),
// likewise for B. beta == 0 never reads C, so C may hold garbage (even NaN).
// alpha == 0 (or K == 0) never reads A or B. Multithreaded with OpenMP
// (omp_get_max_threads() threads); call it from outside a parallel region.
void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
           int64_t ldc);

// An operand made a block at a time instead of read from memory: a
// convolution's im2col matrix, which then never exists whole. fill writes the
// block [row0, row0 + rows) x [col0, col0 + cols) of the matrix as it would be
// stored (K x N for B, N x K for B^T), row after row with leading dimension
// `cols`, into dst. It is called from the product's threads, at most once per
// element for the blocked product and once for the whole matrix where the
// product is skinny (M or N at most 8). It must not throw (it runs inside
// OpenMP regions) nor run a product itself (it would share the caller's
// per-thread packing buffers).
struct MatrixSource {
  void (*fill)(const void* context, int64_t row0, int64_t rows, int64_t col0, int64_t cols,
               float* dst);
  const void* context;
};

// sgemm with B made by `B`: the same result, bit for bit, as filling the
// whole of B into memory and calling sgemm.
void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const MatrixSource& B, float beta, float* C, int64_t ldc);

// The instruction-set paths of sgemm. sgemm() above uses sgemm_best_isa(),
// picked at run time from the CPU; the overload below forces one (tests and
// benchmarks use it to exercise every path on one machine).
enum class SgemmIsa { Scalar, Avx2, Avx512 };

SgemmIsa sgemm_best_isa();
bool sgemm_isa_supported(SgemmIsa isa);
const char* sgemm_isa_name(SgemmIsa isa);

// Same contract as sgemm(); throws std::invalid_argument if `isa` is not
// supported by this CPU.
void sgemm(SgemmIsa isa, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
           float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
           float* C, int64_t ldc);

// bf16 GEMM: sgemm's contract, but op(A) and op(B) are rounded to bf16 (8
// significant bits, round to nearest even, denormals to zero) and their
// products summed in FP32, with AVX-512 BF16 dot products (which also flush
// sums below FP32's normal range, about 1.2e-38, to zero). Each product is
// then within about 2^-7 of its exact value, relative. Products that
// gemm_bf16_rounds() declines are computed as sgemm computes them, operands
// unrounded. gemm_bf16_supported() says whether this CPU has the
// instructions (avx512_bf16 with AVX-512 F/VL/DQ/BW) and the environment
// lets gemm_bf16 use them; otherwise gemm_bf16 throws std::invalid_argument.
// PIXGRAD_CPU_BF16=0 hides them (what a CPU without them does), 1 or unset
// lets them be used; another value throws std::invalid_argument.
enum class Bf16Availability { Available, Hidden, Missing };
Bf16Availability gemm_bf16_availability();
bool gemm_bf16_supported();
// Whether gemm_bf16 rounds a product whose C is M x N: not when M <= 8 or
// N <= 8, where the product is bound by streaming its large operand, nor
// when op(A) is A^T and N <= 64: each value of A then serves at most two
// 32-column panels, sgemm reads A^T in place, and packing it in bf16 pairs
// (a gather across K rows) costs more than the faster dot products save.
bool gemm_bf16_rounds(bool trans_a, int64_t M, int64_t N);
void gemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
               int64_t ldc);
// gemm_bf16 with B made by `B` (see sgemm's overload).
void gemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               const float* A, int64_t lda, const MatrixSource& B, float beta, float* C,
               int64_t ldc);

}  // namespace pixgrad::kernels::cpu
