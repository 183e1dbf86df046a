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

}  // namespace pixgrad::kernels::cpu
