// The CPU convolutions under --precision bf16: each pass against double loops
// twice, on operands rounded by the tests' own bf16 rounding (to FP32
// summation error: the pass rounds exactly its operands) and on the exact
// operands (the bound a user can rely on). Passes that stay FP32 are held to
// FP32's bound.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <pixgrad/kernels/conv_settings.h>
#include <pixgrad/kernels/cpu/conv2d.h>
#include <pixgrad/kernels/cpu/gemm.h>

#include "tests/bf16_reference.h"
#include "tests/conv_reference.h"
#include "tests/precision_scope.h"

using namespace pixgrad::kernels::cpu;
using namespace pixgrad::testing;
using pixgrad::kernels::ConvPass;
using pixgrad::kernels::ConvPrecision;

namespace {

template <typename F>
ConvData map_operands(const ConvData& d, F f) {
  ConvData out = d;
  for (auto* values : {&out.x, &out.w, &out.dy}) std::transform(values->begin(), values->end(), values->begin(), f);
  return out;
}

// Worst |got - reference| over the pass's bound (<= 1 passes). `naive` is one
// of the reference loops; `terms` counts the FP32 additions behind an element.
template <typename Naive>
double worst_over_bound(const std::vector<float>& got, const ConvData& d, Naive naive, bool bf16,
                        bool against_rounded, int64_t terms) {
  const std::vector<double> exact = naive(d);
  const std::vector<double> rounded = naive(map_operands(d, [](float v) { return round_to_bf16(v); }));
  const std::vector<double> magnitude = naive(map_operands(d, [](float v) { return std::fabs(v); }));
  const double summation = (terms + 4) * kFp32Unit;
  // Rounded operands are at most (1 + 2^-8) times as large as the exact ones.
  const double operand_error = bf16 && !against_rounded ? 2 * kBf16Unit + kBf16Unit * kBf16Unit : 0.0;
  const double growth = bf16 ? 1.0 + 2 * kBf16Unit : 1.0;
  const std::vector<double>& want = bf16 && against_rounded ? rounded : exact;
  double worst = 0.0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double bound = (operand_error + summation * growth) * magnitude[i] + 1e-30;
    const double error = std::fabs(got[i] - want[i]) / bound;
    worst = std::max(worst, std::isfinite(got[i]) ? error : INFINITY);
  }
  return worst;
}

std::vector<Conv2dGeometry> bf16_geometries() {
  return {
      {1, 16, 20, 20, 24, 4, 4, 2, 1},  // every pass in bf16
      {2, 9, 13, 11, 33, 3, 3, 1, 1},   // odd sizes, batch 2
      {1, 32, 9, 9, 40, 4, 4, 2, 1},    // a 4x4 plane: backward-data (A^T, 16 columns) stays FP32
      {1, 64, 16, 16, 64, 4, 4, 1, 1},  // Winograd's shape in FP32, products in bf16
      {2, 17, 9, 10, 20, 1, 1, 1, 0},   // pointwise: no im2col
      {1, 64, 12, 12, 3, 4, 4, 1, 1},   // 3 output channels: the direct kernels, FP32
  };
}

}  // namespace

TEST_CASE("CPU convolutions in bf16 round each pass's operands and meet the bf16 bound", "[cpu][conv][bf16]") {
  if (!gemm_bf16_supported()) {
    WARN("this CPU has no avx512_bf16: bf16 convolutions compute in FP32 here");
    const PrecisionScope bf16(ConvPrecision::Bf16);
    CHECK(conv_precision_in_effect() == ConvPrecision::Fp32);
    return;
  }
  const PrecisionScope bf16(ConvPrecision::Bf16);
  REQUIRE(conv_precision_in_effect() == ConvPrecision::Bf16);
  // The routing the geometries above were chosen for.
  const std::vector<Conv2dGeometry> geometries = bf16_geometries();
  CHECK(std::string(conv_choice(geometries[0], ConvPass::BackwardData).math) == "bf16");
  CHECK(std::string(conv_choice(geometries[2], ConvPass::Forward).math) == "bf16");
  CHECK(std::string(conv_choice(geometries[2], ConvPass::BackwardData).math) == "fp32");
  CHECK(std::string(conv_choice(geometries[3], ConvPass::Forward).algorithm) == "im2col-in-pack+gemm");
  CHECK(std::string(conv_choice(geometries[5], ConvPass::Forward).algorithm) == "direct");
  // 16 output channels run in bands of 7 output rows; backward-data's last
  // band has a single row, 64 pixels, which gemm_bf16 declines.
  const Conv2dGeometry banded{1, 512, 64, 64, 16, 3, 3, 1, 1};
  CHECK(std::string(conv_choice(banded, ConvPass::BackwardData).math) == "bf16+fp32");
  CHECK(std::string(conv_choice(banded, ConvPass::Forward).math) == "bf16");

  std::mt19937 rng(31);
  for (const Conv2dGeometry& g : geometries) {
    INFO(describe(g));
    const ConvData d = random_conv_data(g, rng);
    const auto is_bf16 = [&](ConvPass pass) { return std::string(conv_choice(g, pass).math) == "bf16"; };

    std::vector<float> y(d.dy.size(), std::numeric_limits<float>::quiet_NaN());
    conv2d_forward(host, g, d.x.data(), d.w.data(), nullptr, y.data());
    const auto forward = [&](const ConvData& data) { return naive_forward(g, data, false); };
    const int64_t forward_terms = g.in_channels * g.kernel_h * g.kernel_w;
    CHECK(worst_over_bound(y, d, forward, is_bf16(ConvPass::Forward), true, forward_terms) <= 1.0);
    CHECK(worst_over_bound(y, d, forward, is_bf16(ConvPass::Forward), false, forward_terms) <= 1.0);

    std::vector<float> dx(d.x.size(), std::numeric_limits<float>::quiet_NaN());
    conv2d_backward_data(host, g, d.dy.data(), d.w.data(), dx.data());
    const auto data = [&](const ConvData& values) { return naive_backward_data(g, values); };
    const int64_t data_terms = g.out_channels * g.kernel_h * g.kernel_w + g.kernel_h * g.kernel_w;
    CHECK(worst_over_bound(dx, d, data, is_bf16(ConvPass::BackwardData), true, data_terms) <= 1.0);
    CHECK(worst_over_bound(dx, d, data, is_bf16(ConvPass::BackwardData), false, data_terms) <= 1.0);

    std::vector<float> dw(d.w.size(), std::numeric_limits<float>::quiet_NaN());
    conv2d_backward_weight(host, g, d.x.data(), d.dy.data(), dw.data(), nullptr);
    const auto weight = [&](const ConvData& values) { return naive_backward_weight(g, values); };
    const int64_t weight_terms = g.batch * g.out_height() * g.out_width();
    CHECK(worst_over_bound(dw, d, weight, is_bf16(ConvPass::BackwardWeight), true, weight_terms) <= 1.0);
    CHECK(worst_over_bound(dw, d, weight, is_bf16(ConvPass::BackwardWeight), false, weight_terms) <= 1.0);
  }
}

TEST_CASE("CPU convolutions compute in FP32 under every precision but bf16", "[cpu][conv][bf16]") {
  const Conv2dGeometry g{1, 16, 20, 20, 24, 4, 4, 2, 1};
  for (ConvPrecision precision : {ConvPrecision::Fp32, ConvPrecision::Tf32, ConvPrecision::Tf32x3}) {
    const PrecisionScope scope(precision);
    INFO(pixgrad::kernels::to_string(precision));
    CHECK(conv_precision_in_effect() == ConvPrecision::Fp32);
    for (ConvPass pass : {ConvPass::Forward, ConvPass::BackwardData, ConvPass::BackwardWeight})
      CHECK(std::string(conv_choice(g, pass).math) == "fp32");
  }
}
