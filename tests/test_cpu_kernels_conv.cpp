// Tests of the CPU SGEMM, im2col/col2im and convolution kernels against plain
// double-precision loops, plus adjoint identities tying the passes together.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <pixgrad/core/ops.h>
#include <pixgrad/core/tensor.h>
#include <pixgrad/kernels/cpu/conv2d.h>
#include <pixgrad/kernels/cpu/conv2d_direct.h>
#include <pixgrad/kernels/cpu/conv2d_winograd.h>
#include <pixgrad/kernels/cpu/gemm.h>
#include <pixgrad/kernels/cpu/im2col.h>

#include "tests/conv_reference.h"

using namespace pixgrad::kernels::cpu;
using pixgrad::Tensor;
using pixgrad::kernels::Conv2dGeometry;
using namespace pixgrad::testing;

namespace {


double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

// Largest |got - want| relative to the float rounding expected of a sum of
// `terms` products of magnitude <= 1: 1e-5 * sqrt(terms) * (1 + |want|).
double worst_error(const std::vector<float>& got, const std::vector<double>& want,
                   int64_t terms) {
  REQUIRE(got.size() == want.size());
  const double scale = 1e-5 * std::sqrt(static_cast<double>(std::max<int64_t>(terms, 1)));
  double worst = 0.0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i])) return std::numeric_limits<double>::infinity();
    worst = std::max(worst, std::fabs(got[i] - want[i]) / (scale * (1.0 + std::fabs(want[i]))));
  }
  return worst;
}

std::vector<SgemmIsa> supported_isas() {
  std::vector<SgemmIsa> isas;
  for (SgemmIsa isa : {SgemmIsa::Scalar, SgemmIsa::Avx2, SgemmIsa::Avx512})
    if (sgemm_isa_supported(isa)) isas.push_back(isa);
  return isas;
}

struct GemmCase {
  bool trans_a, trans_b;
  int64_t M, N, K;
  float alpha, beta;
};

// Runs one sgemm on padded leading dimensions and returns the worst scaled
// error; the ldc padding must come back untouched.
double run_gemm_case(SgemmIsa isa, const GemmCase& c, std::mt19937& rng) {
  const int64_t a_rows = c.trans_a ? c.K : c.M, a_cols = c.trans_a ? c.M : c.K;
  const int64_t b_rows = c.trans_b ? c.N : c.K, b_cols = c.trans_b ? c.K : c.N;
  const int64_t lda = a_cols + 3, ldb = b_cols + 1, ldc = c.N + 2;
  const std::vector<float> A = random_vector(a_rows * lda, rng);
  const std::vector<float> B = random_vector(b_rows * ldb, rng);
  std::vector<float> C = random_vector(c.M * ldc, rng);
  if (c.beta == 0.0f) std::fill(C.begin(), C.end(), std::numeric_limits<float>::quiet_NaN());
  const std::vector<float> C0 = C;

  sgemm(isa, c.trans_a, c.trans_b, c.M, c.N, c.K, c.alpha, A.data(), lda, B.data(), ldb, c.beta,
        C.data(), ldc);

  std::vector<float> got;
  std::vector<double> want;
  for (int64_t i = 0; i < c.M; ++i) {
    for (int64_t j = 0; j < c.N; ++j) {
      double s = 0.0;
      for (int64_t k = 0; k < c.K; ++k) {
        const double a = c.trans_a ? A[k * lda + i] : A[i * lda + k];
        const double b = c.trans_b ? B[j * ldb + k] : B[k * ldb + j];
        s += a * b;
      }
      const double prior = c.beta == 0.0f ? 0.0 : c.beta * static_cast<double>(C0[i * ldc + j]);
      want.push_back(c.alpha * s + prior);
      got.push_back(C[i * ldc + j]);
    }
    for (int64_t j = c.N; j < ldc; ++j) {
      const float before = C0[i * ldc + j], after = C[i * ldc + j];
      if (!(after == before || (std::isnan(after) && std::isnan(before))))
        return std::numeric_limits<double>::infinity();
    }
  }
  return worst_error(got, want, c.K);
}

std::string describe(SgemmIsa isa, const GemmCase& c) {
  return std::string(sgemm_isa_name(isa)) + " trans_a=" + std::to_string(c.trans_a) +
         " trans_b=" + std::to_string(c.trans_b) + " M=" + std::to_string(c.M) +
         " N=" + std::to_string(c.N) + " K=" + std::to_string(c.K) +
         " alpha=" + std::to_string(c.alpha) + " beta=" + std::to_string(c.beta);
}

std::vector<Conv2dGeometry> conv_geometries() {
  std::vector<Conv2dGeometry> out;
  for (int64_t batch : {1, 3})
    for (int64_t k : {1, 3, 4})
      for (int64_t stride : {1, 2})
        for (int64_t padding : {0, 1, 2})
          out.push_back({batch, 3, 9, 7, 5, k, k, stride, padding});
  // Non-square kernels, more channels, a pointwise layer and U-Net-like ones.
  out.push_back({2, 4, 8, 11, 6, 3, 1, 1, 1});
  out.push_back({1, 5, 10, 6, 3, 2, 4, 2, 1});
  out.push_back({2, 17, 6, 5, 33, 1, 1, 1, 0});
  out.push_back({1, 16, 16, 16, 32, 4, 4, 2, 1});
  out.push_back({1, 64, 4, 4, 40, 4, 4, 2, 1});
  // Few output channels and a col over 8 MiB: run in bands of output rows,
  // with a ragged last band.
  out.push_back({1, 128, 35, 35, 2, 4, 4, 1, 1});
  out.push_back({2, 256, 66, 66, 1, 4, 4, 2, 1});
  return out;
}

}  // namespace

// ---- SGEMM -----------------------------------------------------------------

TEST_CASE("sgemm matches a double-precision loop on odd sizes", "[cpu][gemm]") {
  std::mt19937 rng(1234);
  const int64_t sizes[] = {1, 3, 17, 31, 33, 65, 127};
  for (SgemmIsa isa : supported_isas()) {
    for (int t = 0; t < 4; ++t) {
      const bool ta = t & 1, tb = t & 2;
      for (int64_t M : sizes)
        for (int64_t N : sizes)
          for (int64_t K : {int64_t{1}, int64_t{33}, int64_t{300}}) {
            // Cycle the scalar factors so every size meets each of them.
            const float alphas[] = {1.0f, -0.5f, 2.0f};
            const float betas[] = {0.0f, 1.0f, 0.75f};
            const int64_t pick = (M + 3 * N + K) % 3;
            const GemmCase c{ta, tb, M, N, K, alphas[pick], betas[(pick + t) % 3]};
            INFO(describe(isa, c));
            CHECK(run_gemm_case(isa, c, rng) <= 1.0);
          }
    }
  }
}

TEST_CASE("sgemm handles the skinny U-Net shapes", "[cpu][gemm]") {
  std::mt19937 rng(99);
  // conv forward (M=Cout, N=OH*OW, K=Cin*16), backward data with W^T and
  // backward weight with col^T, at the U-Net's extreme aspect ratios.
  const GemmCase cases[] = {
      {false, false, 512, 4, 8192, 1.0f, 0.0f},  {false, false, 512, 1, 8192, 1.0f, 0.0f},
      {false, false, 64, 16384, 48, 1.0f, 0.0f}, {false, false, 1, 900, 8192, 1.0f, 0.0f},
      {true, false, 8192, 4, 512, 1.0f, 0.0f},   {true, false, 48, 4096, 128, 1.0f, 0.0f},
      {false, true, 512, 8192, 4, 1.0f, 1.0f},   {false, true, 64, 48, 4096, 1.0f, 0.0f},
      {false, true, 3, 2048, 700, 1.0f, 0.0f},   {true, true, 700, 6, 300, -1.0f, 0.5f},
  };
  for (SgemmIsa isa : supported_isas())
    for (const GemmCase& c : cases) {
      INFO(describe(isa, c));
      CHECK(run_gemm_case(isa, c, rng) <= 1.0);
    }
}

TEST_CASE("sgemm streams a large write-once C from aligned storage", "[cpu][gemm]") {
  // A 64-byte aligned, 16 MiB C with beta = 0 and one K slice takes the
  // non-temporal store path (backward-weight of the U-Net bottleneck).
  const int64_t M = 512, N = 8192, K = 4;
  std::mt19937 rng(5);
  const std::vector<float> A = random_vector(M * K, rng), B = random_vector(N * K, rng);
  std::vector<float> storage(static_cast<size_t>(M * N + 16));
  float* C = storage.data();
  while (reinterpret_cast<uintptr_t>(C) % 64 != 0) ++C;
  std::fill(C, C + M * N, std::numeric_limits<float>::quiet_NaN());
  sgemm(false, true, M, N, K, 0.5f, A.data(), K, B.data(), K, 0.0f, C, N);
  double worst = 0.0;
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = 0.0;
      for (int64_t k = 0; k < K; ++k) s += static_cast<double>(A[i * K + k]) * B[j * K + k];
      const double err = std::fabs(0.5 * s - C[i * N + j]);
      worst = std::isnan(C[i * N + j]) ? 1.0 : std::max(worst, err);
    }
  CHECK(worst < 1e-5);
}

TEST_CASE("sgemm degenerate sizes and scalars", "[cpu][gemm]") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (SgemmIsa isa : supported_isas()) {
    INFO(sgemm_isa_name(isa));
    std::vector<float> C(12, nan);
    std::vector<float> A(12, 1.0f), B(12, 1.0f);
    // M or N zero: nothing is touched.
    sgemm(isa, false, false, 0, 3, 4, 1.0f, A.data(), 4, B.data(), 3, 0.0f, C.data(), 3);
    sgemm(isa, false, false, 3, 0, 4, 1.0f, A.data(), 4, B.data(), 1, 0.0f, C.data(), 1);
    CHECK(std::all_of(C.begin(), C.end(), [](float v) { return std::isnan(v); }));
    // K zero: C = beta * C, and beta 0 clears NaN.
    sgemm(isa, false, false, 3, 4, 0, 1.0f, A.data(), 1, B.data(), 4, 0.0f, C.data(), 4);
    CHECK(std::all_of(C.begin(), C.end(), [](float v) { return v == 0.0f; }));
    std::fill(C.begin(), C.end(), 2.0f);
    sgemm(isa, true, true, 3, 4, 0, 1.0f, A.data(), 3, B.data(), 1, 0.5f, C.data(), 4);
    CHECK(std::all_of(C.begin(), C.end(), [](float v) { return v == 1.0f; }));
    // alpha zero never reads A or B.
    std::vector<float> poisoned(12, nan);
    sgemm(isa, false, false, 3, 4, 3, 0.0f, poisoned.data(), 3, poisoned.data(), 4, 2.0f,
          C.data(), 4);
    CHECK(std::all_of(C.begin(), C.end(), [](float v) { return v == 2.0f; }));
    // 1 x 1 x 1.
    float a = 3.0f, b = -2.0f, c = nan;
    sgemm(isa, false, false, 1, 1, 1, 1.0f, &a, 1, &b, 1, 0.0f, &c, 1);
    CHECK(c == -6.0f);
  }
  std::vector<float> buf(16, 0.0f);
  CHECK_THROWS_AS(sgemm(false, false, 4, 4, 4, 1.0f, buf.data(), 3, buf.data(), 4, 0.0f,
                        buf.data(), 4),
                  std::invalid_argument);
  CHECK_THROWS_AS(sgemm(false, false, -1, 4, 4, 1.0f, buf.data(), 4, buf.data(), 4, 0.0f,
                        buf.data(), 4),
                  std::invalid_argument);
}

TEST_CASE("sgemm picks a supported instruction set", "[cpu][gemm]") {
  CHECK(sgemm_isa_supported(sgemm_best_isa()));
  CHECK(sgemm_isa_supported(SgemmIsa::Scalar));
}

// ---- im2col / col2im ---------------------------------------------------------

TEST_CASE("im2col matches the window definition and col2im is its adjoint", "[cpu][conv]") {
  std::mt19937 rng(7);
  for (const Im2colGeometry g : {Im2colGeometry{2, 7, 9, 3, 3, 1, 1}, Im2colGeometry{3, 8, 6, 4, 4, 2, 1},
                                 Im2colGeometry{1, 5, 5, 2, 3, 2, 2}, Im2colGeometry{2, 4, 4, 1, 1, 3, 0}}) {
    const std::vector<float> image = random_vector(g.channels * g.height * g.width, rng);
    std::vector<float> col(static_cast<size_t>(g.col_rows() * g.col_cols()), 42.0f);
    im2col(g, image.data(), col.data());
    bool exact = true;
    for (int64_t c = 0; c < g.channels; ++c)
      for (int64_t i = 0; i < g.kernel_h; ++i)
        for (int64_t j = 0; j < g.kernel_w; ++j)
          for (int64_t oy = 0; oy < g.out_height(); ++oy)
            for (int64_t ox = 0; ox < g.out_width(); ++ox) {
              const int64_t iy = oy * g.stride - g.padding + i, ix = ox * g.stride - g.padding + j;
              const bool inside = iy >= 0 && iy < g.height && ix >= 0 && ix < g.width;
              const float want = inside ? image[(c * g.height + iy) * g.width + ix] : 0.0f;
              const int64_t row = (c * g.kernel_h + i) * g.kernel_w + j;
              exact = exact && col[row * g.col_cols() + oy * g.out_width() + ox] == want;
            }
    CHECK(exact);

    const std::vector<float> probe = random_vector(g.col_rows() * g.col_cols(), rng);
    std::vector<float> folded(image.size(), 0.0f);
    col2im(g, probe.data(), folded.data());
    CHECK(dot(col, probe) == Approx(dot(image, folded)).epsilon(1e-5));
  }
}

// ---- conv2d ------------------------------------------------------------------

TEST_CASE("conv2d passes match direct loops", "[cpu][conv]") {
  std::mt19937 rng(2024);
  for (const Conv2dGeometry& g : conv_geometries()) {
    INFO(describe(g));
    const ConvData d = random_conv_data(g, rng);
    const int64_t taps = g.in_channels * g.kernel_h * g.kernel_w;
    const int64_t plane = g.out_height() * g.out_width();

    for (bool with_bias : {false, true}) {
      INFO("bias=" << with_bias);
      std::vector<float> y(d.dy.size(), std::numeric_limits<float>::quiet_NaN());
      conv2d_forward(host, g, d.x.data(), d.w.data(), with_bias ? d.bias.data() : nullptr, y.data());
      CHECK(worst_error(y, naive_forward(g, d, with_bias), taps) <= 1.0);
    }

    std::vector<float> dx(d.x.size(), std::numeric_limits<float>::quiet_NaN());
    conv2d_backward_data(host, g, d.dy.data(), d.w.data(), dx.data());
    CHECK(worst_error(dx, naive_backward_data(g, d), g.out_channels * g.kernel_h * g.kernel_w) <=
          1.0);

    std::vector<float> dw(d.w.size(), std::numeric_limits<float>::quiet_NaN());
    std::vector<float> db(d.bias.size(), std::numeric_limits<float>::quiet_NaN());
    conv2d_backward_weight(host, g, d.x.data(), d.dy.data(), dw.data(), db.data());
    CHECK(worst_error(dw, naive_backward_weight(g, d), g.batch * plane) <= 1.0);
    CHECK(worst_error(db, naive_bias_grad(g.batch, g.out_channels, plane, d.dy), g.batch * plane) <=
          1.0);
  }
}

// Stride-1 layers with at most 4 output channels: output widths below, at and
// past whole register tiles, every padding up to kernel - 1, channel counts
// that leave every remainder of the 4-channel blocks of backward-data, and
// the PatchGAN's last layer itself.
TEST_CASE("direct convolution of few output channels matches direct loops", "[cpu][conv][direct]") {
  const std::vector<Conv2dGeometry> geometries{
      {2, 7, 13, 50, 1, 3, 3, 1, 1}, {1, 5, 9, 37, 3, 3, 3, 1, 2}, {2, 3, 11, 29, 4, 4, 4, 1, 3},
      {1, 9, 6, 33, 2, 4, 4, 1, 0},  {1, 6, 20, 70, 3, 3, 3, 1, 1}, {3, 2, 5, 4, 4, 3, 3, 1, 0},
      {1, 512, 32, 32, 1, 4, 4, 1, 1}};
  std::mt19937 rng(31);
  double worst_seen = 0.0;
  for (const Conv2dGeometry& g : geometries) {
    INFO(describe(g));
    if (!direct_conv_applies(g)) {
      WARN("this CPU lacks AVX2 and FMA: the direct convolution is not used here");
      return;
    }
    const ConvData d = random_conv_data(g, rng);
    const int64_t plane = g.out_height() * g.out_width();
    std::vector<float> y(d.dy.size(), std::numeric_limits<float>::quiet_NaN());
    conv2d_forward(host, g, d.x.data(), d.w.data(), d.bias.data(), y.data());
    const double forward = worst_error(y, naive_forward(g, d, true), g.in_channels * g.kernel_h * g.kernel_w);
    std::vector<float> dx(d.x.size(), std::numeric_limits<float>::quiet_NaN());
    conv2d_backward_data(host, g, d.dy.data(), d.w.data(), dx.data());
    const double data = worst_error(dx, naive_backward_data(g, d), g.out_channels * g.kernel_h * g.kernel_w);
    std::vector<float> dw(d.w.size(), std::numeric_limits<float>::quiet_NaN());
    std::vector<float> db(d.bias.size(), std::numeric_limits<float>::quiet_NaN());
    conv2d_backward_weight(host, g, d.x.data(), d.dy.data(), dw.data(), db.data());
    const double weight = worst_error(dw, naive_backward_weight(g, d), g.batch * plane);
    // A tenth of the general bound: 1e-6 * sqrt(terms) * (1 + |want|).
    CHECK(forward <= 0.1);
    CHECK(data <= 0.1);
    CHECK(weight <= 0.1);
    CHECK(worst_error(db, naive_bias_grad(g.batch, g.out_channels, plane, d.dy), g.batch * plane) <= 1.0);
    worst_seen = std::max({worst_seen, forward, data, weight});
  }
  // The errors are float rounding, not zero (the path computed something of its own).
  CHECK(worst_seen > 0.0);
}

// A float rounded to TF32 (10 explicit mantissa bits, round to nearest even).
static float round_to_tf32(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  bits = (bits + 0xFFFu + ((bits >> 13) & 1u)) & ~0x1FFFu;
  std::memcpy(&value, &bits, sizeof bits);
  return value;
}

// Wide stride-1 4x4 layers: output sides odd and even, tile rows ragged
// against the groups of eight tiles, every padding, two images.
TEST_CASE("Winograd F(2x2, 4x4) convolutions match direct loops", "[cpu][conv][winograd]") {
  const std::vector<Conv2dGeometry> geometries{{1, 64, 12, 12, 64, 4, 4, 1, 1},
                                               {2, 70, 17, 23, 66, 4, 4, 1, 0},
                                               {1, 64, 9, 40, 72, 4, 4, 1, 3},
                                               {1, 96, 10, 10, 64, 4, 4, 1, 2},
                                               {1, 128, 20, 20, 96, 4, 4, 1, 1}};
  std::mt19937 rng(5);
  for (const Conv2dGeometry& g : geometries) {
    INFO(describe(g));
    if (!winograd_conv_applies(g)) {
      WARN("Winograd convolutions are off here (no AVX2 and FMA, or PIXGRAD_CPU_WINOGRAD=0)");
      return;
    }
    const ConvData d = random_conv_data(g, rng);
    const int64_t taps = g.in_channels * 16;
    // A quarter of the general bound: 2.5e-6 * sqrt(terms) * (1 + |want|).
    const double bound = 0.25;
    std::vector<float> y(d.dy.size(), std::numeric_limits<float>::quiet_NaN());
    conv2d_forward(host, g, d.x.data(), d.w.data(), d.bias.data(), y.data());
    const std::vector<double> want = naive_forward(g, d, true);
    CHECK(worst_error(y, want, taps) <= bound);
    std::vector<float> dx(d.x.size(), std::numeric_limits<float>::quiet_NaN());
    conv2d_backward_data(host, g, d.dy.data(), d.w.data(), dx.data());
    CHECK(worst_error(dx, naive_backward_data(g, d), g.out_channels * 16) <= bound);

    // The bound is tight enough to refuse TF32 arithmetic: the same layer on
    // TF32-rounded operands, summed exactly, fails it.
    ConvData rounded = d;
    for (float& v : rounded.x) v = round_to_tf32(v);
    for (float& v : rounded.w) v = round_to_tf32(v);
    const std::vector<double> tf32 = naive_forward(g, rounded, true);
    CHECK(worst_error(std::vector<float>(tf32.begin(), tf32.end()), want, taps) > bound);
  }
}

TEST_CASE("conv2d backward passes satisfy the adjoint identities", "[cpu][conv]") {
  std::mt19937 rng(77);
  for (const Conv2dGeometry& g : conv_geometries()) {
    INFO(describe(g));
    const ConvData d = random_conv_data(g, rng);
    std::vector<float> y(d.dy.size()), dx(d.x.size()), dw(d.w.size()), db(d.bias.size());
    conv2d_forward(host, g, d.x.data(), d.w.data(), nullptr, y.data());
    conv2d_backward_data(host, g, d.dy.data(), d.w.data(), dx.data());
    conv2d_backward_weight(host, g, d.x.data(), d.dy.data(), dw.data(), db.data());
    const double lhs = dot(y, d.dy);
    // <conv(x; w), dy> is bilinear: equal to <x, dX> and to <w, dW>.
    CHECK(dot(d.x, dx) == Approx(lhs).epsilon(1e-4).margin(1e-4));
    CHECK(dot(d.w, dw) == Approx(lhs).epsilon(1e-4).margin(1e-4));
    // The bias term adds <bias, sum of dy per channel>.
    std::vector<float> yb(d.dy.size());
    conv2d_forward(host, g, d.x.data(), d.w.data(), d.bias.data(), yb.data());
    CHECK(dot(yb, d.dy) == Approx(lhs + dot(d.bias, db)).epsilon(1e-4).margin(1e-4));
  }
}

TEST_CASE("conv2d overwrites grad_weight for every batch size and rejects bad geometry",
          "[cpu][conv]") {
  const Conv2dGeometry empty{0, 2, 5, 5, 3, 3, 3, 1, 1};
  std::vector<float> dw(3 * 2 * 9, 5.0f), db(3, 5.0f);
  conv2d_backward_weight(host, empty, nullptr, nullptr, dw.data(), db.data());
  CHECK(std::all_of(dw.begin(), dw.end(), [](float v) { return v == 0.0f; }));
  CHECK(std::all_of(db.begin(), db.end(), [](float v) { return v == 0.0f; }));

  std::vector<float> buf(1024);
  const Conv2dGeometry too_small{1, 1, 2, 2, 1, 5, 5, 1, 0};
  CHECK_THROWS_AS(conv2d_forward(host, too_small, buf.data(), buf.data(), nullptr, buf.data()),
                  std::invalid_argument);
  const Conv2dGeometry zero_stride{1, 1, 4, 4, 1, 3, 3, 0, 1};
  CHECK_THROWS_AS(conv2d_backward_data(host, zero_stride, buf.data(), buf.data(), buf.data()),
                  std::invalid_argument);
  // A transposed convolution runs as its mirror convolution, whose output
  // (here the transposed layer's 1x1 input) the 1x1 kernel cannot produce
  // from a 1 - 2 = -1 pixel extent.
  const Tensor bad_input = Tensor::zeros({1, 1, 1, 1}), bad_weight = Tensor::zeros({1, 1, 1, 1});
  CHECK_THROWS(pixgrad::conv_transpose2d(bad_input, bad_weight, Tensor(), {1, 1}));
}

// ---- conv_transpose2d ----------------------------------------------------------

namespace {

// Input [batch, in_channels, in_height, in_width] -> [batch, out_channels, ...].
struct TransposedGeometry {
  int64_t batch, in_channels, in_height, in_width, out_channels, kernel_h, kernel_w, stride, padding;
  int64_t out_height() const { return (in_height - 1) * stride - 2 * padding + kernel_h; }
  int64_t out_width() const { return (in_width - 1) * stride - 2 * padding + kernel_w; }
};

std::vector<float> values(const Tensor& t) { return t.to_vector(); }

}  // namespace

// The library computes a transposed convolution with the conv2d kernels (its
// mirror convolution, core/ops/conv.cpp); checked here through the op and its
// backward pass against the definition as a scatter.
TEST_CASE("conv_transpose2d passes match a direct scatter", "[cpu][conv]") {
  std::mt19937 rng(31337);
  const TransposedGeometry geometries[] = {
      {1, 3, 5, 4, 2, 4, 4, 2, 1},  {3, 2, 3, 3, 5, 3, 3, 1, 0}, {2, 4, 4, 6, 3, 3, 3, 2, 1},
      {1, 5, 2, 3, 4, 4, 4, 2, 2},  {2, 6, 3, 3, 7, 1, 1, 1, 0}, {1, 32, 1, 1, 16, 4, 4, 2, 1},
      {1, 24, 4, 4, 12, 4, 4, 2, 1},
  };
  for (const TransposedGeometry& g : geometries) {
    const int64_t oh = g.out_height(), ow = g.out_width();
    INFO("batch=" << g.batch << " in=" << g.in_channels << "x" << g.in_height << "x" << g.in_width
                  << " out=" << g.out_channels << "x" << oh << "x" << ow << " k=" << g.kernel_h
                  << " s=" << g.stride << " p=" << g.padding);
    const auto x = random_vector(g.batch * g.in_channels * g.in_height * g.in_width, rng);
    const auto w = random_vector(g.in_channels * g.out_channels * g.kernel_h * g.kernel_w, rng);
    const auto bias = random_vector(g.out_channels, rng);
    const auto dy = random_vector(g.batch * g.out_channels * oh * ow, rng);

    auto x_at = [&](int64_t b, int64_t c, int64_t y, int64_t xx) {
      return ((b * g.in_channels + c) * g.in_height + y) * g.in_width + xx;
    };
    auto y_at = [&](int64_t b, int64_t c, int64_t y, int64_t xx) {
      return ((b * g.out_channels + c) * oh + y) * ow + xx;
    };
    auto w_at = [&](int64_t ci, int64_t co, int64_t i, int64_t j) {
      return ((ci * g.out_channels + co) * g.kernel_h + i) * g.kernel_w + j;
    };
    // Every input pixel scatters its kernel-weighted value into the output.
    std::vector<double> y_ref(dy.size(), 0.0), dx_ref(x.size(), 0.0), dw_ref(w.size(), 0.0);
    for (int64_t b = 0; b < g.batch; ++b)
      for (int64_t ci = 0; ci < g.in_channels; ++ci)
        for (int64_t co = 0; co < g.out_channels; ++co)
          for (int64_t iy = 0; iy < g.in_height; ++iy)
            for (int64_t ix = 0; ix < g.in_width; ++ix)
              for (int64_t i = 0; i < g.kernel_h; ++i)
                for (int64_t j = 0; j < g.kernel_w; ++j) {
                  const int64_t oy = iy * g.stride - g.padding + i;
                  const int64_t ox = ix * g.stride - g.padding + j;
                  if (oy < 0 || oy >= oh || ox < 0 || ox >= ow) continue;
                  const double xv = x[x_at(b, ci, iy, ix)], wv = w[w_at(ci, co, i, j)];
                  const double gv = dy[y_at(b, co, oy, ox)];
                  y_ref[y_at(b, co, oy, ox)] += xv * wv;
                  dx_ref[x_at(b, ci, iy, ix)] += gv * wv;
                  dw_ref[w_at(ci, co, i, j)] += gv * xv;
                }
    std::vector<double> y_bias_ref = y_ref;
    for (size_t k = 0; k < y_bias_ref.size(); ++k)
      y_bias_ref[k] += bias[k / static_cast<size_t>(oh * ow) % g.out_channels];

    const int64_t kk = g.kernel_h * g.kernel_w;
    const pixgrad::ConvParams params{g.stride, g.padding};
    const Tensor x_t = Tensor::from_vector(x, {g.batch, g.in_channels, g.in_height, g.in_width}).set_requires_grad();
    const Tensor w_t =
        Tensor::from_vector(w, {g.in_channels, g.out_channels, g.kernel_h, g.kernel_w}).set_requires_grad();
    const Tensor bias_t = Tensor::from_vector(bias, {g.out_channels}).set_requires_grad();
    const Tensor dy_t = Tensor::from_vector(dy, {g.batch, g.out_channels, oh, ow});
    std::vector<float> y = values(pixgrad::conv_transpose2d(x_t.detach(), w_t.detach(), Tensor(), params));
    CHECK(worst_error(y, y_ref, g.in_channels * kk) <= 1.0);
    const Tensor y_bias = pixgrad::conv_transpose2d(x_t, w_t, bias_t, params);
    y = values(y_bias);
    CHECK(worst_error(y, y_bias_ref, g.in_channels * kk) <= 1.0);

    y_bias.backward(dy_t);
    const std::vector<float> dx = values(x_t.grad());
    CHECK(worst_error(dx, dx_ref, g.out_channels * kk) <= 1.0);

    const std::vector<float> dw = values(w_t.grad()), db = values(bias_t.grad());
    CHECK(worst_error(dw, dw_ref, g.batch * g.in_height * g.in_width) <= 1.0);
    CHECK(worst_error(db, naive_bias_grad(g.batch, g.out_channels, oh * ow, dy), g.batch * oh * ow) <=
          1.0);
  }
}
