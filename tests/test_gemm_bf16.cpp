// The bf16 GEMM against double-precision loops: once on operands rounded by
// the tests' own bf16 rounding (agreement to FP32 summation error shows that
// the kernel rounds exactly so and no more), once on the exact operands (the
// bound a caller can rely on).

#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <pixgrad/kernels/cpu/gemm.h>

#include "tests/bf16_reference.h"

using namespace pixgrad::kernels::cpu;
using pixgrad::testing::kBf16Unit;
using pixgrad::testing::kFp32Unit;
using pixgrad::testing::round_to_bf16;

namespace {

// Values of both signs over eight binades, so that rounding is exercised at
// many exponents.
std::vector<float> random_values(int64_t count, std::mt19937& rng) {
  std::uniform_real_distribution<float> mantissa(-1.0f, 1.0f);
  std::uniform_int_distribution<int> exponent(-4, 3);
  std::vector<float> v(static_cast<size_t>(count));
  for (float& x : v) x = std::ldexp(mantissa(rng), exponent(rng));
  return v;
}

struct Bf16Case {
  bool trans_a, trans_b;
  int64_t M, N, K;
  float alpha, beta;
};

std::string describe(const Bf16Case& c) {
  return "trans_a=" + std::to_string(c.trans_a) + " trans_b=" + std::to_string(c.trans_b) +
         " M=" + std::to_string(c.M) + " N=" + std::to_string(c.N) + " K=" + std::to_string(c.K) +
         " alpha=" + std::to_string(c.alpha) + " beta=" + std::to_string(c.beta);
}

struct Bf16Errors {
  // Worst |got - reference| over its bound; <= 1 passes.
  double against_rounded = 0.0;  // bound: FP32 summation of the bf16 products
  double against_exact = 0.0;    // bound: bf16 products, then FP32 summation
  bool padding_kept = true;
};

// The documented rule: C of at most 8 rows or columns, or a product of A^T
// with at most 64 columns, is computed in FP32.
bool rounds(bool trans_a, int64_t M, int64_t N) { return M > 8 && N > 8 && !(trans_a && N <= 64); }

// Runs gemm_bf16 with padded leading dimensions. Products it computes in FP32
// have the exact product as their "rounded" reference.
Bf16Errors run_case(const Bf16Case& c, std::mt19937& rng) {
  REQUIRE(gemm_bf16_rounds(c.trans_a, c.M, c.N) == rounds(c.trans_a, c.M, c.N));
  const bool skinny = !rounds(c.trans_a, c.M, c.N);
  const int64_t a_rows = c.trans_a ? c.K : c.M, a_cols = c.trans_a ? c.M : c.K;
  const int64_t b_rows = c.trans_b ? c.N : c.K, b_cols = c.trans_b ? c.K : c.N;
  const int64_t lda = a_cols + 3, ldb = b_cols + 5, ldc = c.N + 2;
  const std::vector<float> A = random_values(a_rows * lda, rng);
  const std::vector<float> B = random_values(b_rows * ldb, rng);
  std::vector<float> C = random_values(c.M * ldc, rng);
  if (c.beta == 0.0f) std::fill(C.begin(), C.end(), std::numeric_limits<float>::quiet_NaN());
  const std::vector<float> C0 = C;

  gemm_bf16(c.trans_a, c.trans_b, c.M, c.N, c.K, c.alpha, A.data(), lda, B.data(), ldb, c.beta,
            C.data(), ldc);

  Bf16Errors e;
  const auto rounded = [&](float v) { return skinny ? v : round_to_bf16(v); };
  for (int64_t i = 0; i < c.M; ++i) {
    for (int64_t j = 0; j < c.N; ++j) {
      double exact = 0.0, with_rounding = 0.0, magnitude = 0.0, rounded_magnitude = 0.0;
      for (int64_t k = 0; k < c.K; ++k) {
        const float a = c.trans_a ? A[k * lda + i] : A[i * lda + k];
        const float b = c.trans_b ? B[j * ldb + k] : B[k * ldb + j];
        const double product = static_cast<double>(a) * b;
        const double rounded_product = static_cast<double>(rounded(a)) * rounded(b);
        exact += product;
        magnitude += std::fabs(product);
        with_rounding += rounded_product;
        rounded_magnitude += std::fabs(rounded_product);
      }
      const double prior = c.beta == 0.0f ? 0.0 : static_cast<double>(c.beta) * C0[i * ldc + j];
      const double got = C[i * ldc + j];
      const double alpha = std::fabs(c.alpha);
      // FP32 sums of K terms, the alpha scaling and the beta update.
      const double summation = (c.K + 4) * kFp32Unit;
      const double rounded_bound =
          summation * (alpha * rounded_magnitude + std::fabs(prior)) + 1e-30;
      const double operand_error = skinny ? 0.0 : 2 * kBf16Unit + kBf16Unit * kBf16Unit;
      const double exact_bound =
          (operand_error + summation) * alpha * magnitude + summation * std::fabs(prior) + 1e-30;
      const double vs_rounded = std::fabs(got - (c.alpha * with_rounding + prior)) / rounded_bound;
      const double vs_exact = std::fabs(got - (c.alpha * exact + prior)) / exact_bound;
      e.against_rounded = std::max(e.against_rounded, std::isfinite(got) ? vs_rounded : INFINITY);
      e.against_exact = std::max(e.against_exact, std::isfinite(got) ? vs_exact : INFINITY);
    }
    for (int64_t j = c.N; j < ldc; ++j) {
      const float before = C0[i * ldc + j], after = C[i * ldc + j];
      if (!(after == before || (std::isnan(after) && std::isnan(before)))) e.padding_kept = false;
    }
  }
  return e;
}

void check_case(const Bf16Case& c, std::mt19937& rng) {
  INFO(describe(c));
  const Bf16Errors e = run_case(c, rng);
  CHECK(e.against_rounded <= 1.0);
  CHECK(e.against_exact <= 1.0);
  CHECK(e.padding_kept);
}

bool skip_without_bf16() {
  if (gemm_bf16_supported()) return false;
  WARN("this CPU has no avx512_bf16: gemm_bf16 is not run here (it refuses, as checked)");
  float x = 1.0f;
  CHECK_THROWS_AS(gemm_bf16(false, false, 1, 1, 1, 1.0f, &x, 1, &x, 1, 0.0f, &x, 1),
                  std::invalid_argument);
  return true;
}

}  // namespace

TEST_CASE("gemm_bf16 rounds operands to bf16 and sums in FP32, on odd sizes", "[cpu][gemm][bf16]") {
  if (skip_without_bf16()) return;
  std::mt19937 rng(20261206);
  // Sizes off every tile: MR 14, NR 32, KC 512 values (256 pairs); odd K
  // leaves a pair with a zero partner; K 1 and 2 are a single pair.
  const int64_t shapes[][3] = {{9, 65, 1},     {15, 97, 2},    {14, 96, 31},   {29, 67, 513},
                               {50, 70, 1030}, {130, 200, 77}, {17, 300, 600}, {200, 66, 257},
                               {100, 9, 40},   {40, 64, 33}};
  for (bool trans_a : {false, true})
    for (bool trans_b : {false, true})
      for (const auto& s : shapes)
        for (const auto& [alpha, beta] : {std::pair{1.0f, 0.0f}, {-0.5f, 1.0f}, {2.0f, 0.25f}})
          check_case({trans_a, trans_b, s[0], s[1], s[2], alpha, beta}, rng);
}

TEST_CASE("gemm_bf16 keeps skinny products, and narrow ones of A^T, in FP32", "[cpu][gemm][bf16]") {
  if (skip_without_bf16()) return;
  std::mt19937 rng(7);
  for (bool trans_a : {false, true})
    for (bool trans_b : {false, true})
      for (const auto& s : {std::array<int64_t, 3>{5, 100, 64}, {100, 3, 65}, {8, 8, 300}, {300, 64, 100},
                            {9, 40, 50}})
        check_case({trans_a, trans_b, s[0], s[1], s[2], 1.0f, 0.5f}, rng);
}

TEST_CASE("gemm_bf16 passes NaN through and checks its arguments", "[cpu][gemm][bf16]") {
  if (skip_without_bf16()) return;
  const int64_t M = 20, N = 40, K = 9;
  std::vector<float> A(M * K, 0.5f), B(K * N, 0.25f), C(M * N, 0.0f);
  A[3 * K + 4] = std::numeric_limits<float>::quiet_NaN();
  gemm_bf16(false, false, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, C.data(), N);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      INFO("C[" << i << "][" << j << "] = " << C[i * N + j]);
      if (i == 3)
        CHECK(std::isnan(C[i * N + j]));
      else
        CHECK(C[i * N + j] == static_cast<float>(K * 0.125));
    }
  CHECK_THROWS_AS(gemm_bf16(false, false, M, N, K, 1.0f, A.data(), K - 1, B.data(), N, 0.0f,
                            C.data(), N),
                  std::invalid_argument);
}
