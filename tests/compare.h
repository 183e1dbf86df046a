// Element-by-element comparison of a result with its reference, shared by the
// CPU suite and the CUDA suite (header-only: the CUDA suite links neither the
// CPU suite's sources nor anything else of the tests).
//
// An element passes when
//
//     |actual - expected| <= relative * |expected| + floor * rms(expected) + absolute
//
// The first term holds each element to its own magnitude, so a small element
// is not excused by a large neighbour (a max-normalised error would excuse
// it). The floor is for elements that are small only because their sum
// cancelled: their rounding error comes from the terms of that sum, which are
// of the size of the tensor's typical element, hence the RMS. (One huge
// element would raise the floor for all; the tests draw their inputs
// uniformly, so none dominates.) `absolute` is
// for values whose scale is known from elsewhere (a scalar sum of n terms, a
// gradient that is zero in exact arithmetic).
//
// NaN passes only against NaN, and an infinity only against the same
// infinity.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include <pixgrad/core/tensor.h>

namespace pixgrad::testing {

struct Tolerance {
  double relative = 0;  // of |expected|
  double floor = 0;     // of rms(expected)
  double absolute = 0;

  Tolerance scaled(double factor) const { return {relative * factor, floor * factor, absolute * factor}; }
  Tolerance plus_absolute(double extra) const { return {relative, floor, absolute + extra}; }
};

// The tolerances of the CUDA suite, each with what it was calibrated against.
// tests/test_compare.cpp checks the claims made here on the CPU.
//
// Convolutions: float32 sums of up to 262,144 products in a different order
// differ by up to 3.4e-5 in units of (|e| + rms) (a plain serial loop against
// the blocked GEMM, measured on the presets' layers); operands rounded to TF32
// (10-bit mantissa, as tensor cores take them) differ by 8e-4 or more. 1e-4
// sits between the two: float32 passes, TF32 fails.
inline constexpr Tolerance kConvTolerance{1e-4, 1e-4, 0};
// Elementwise ops: the same formulas in float32; tanhf, expf and log1pf may
// differ from glibc's by a few units in the last place (~1e-7 each). The
// absolute 1e-6 is for derivatives formed by cancellation, such as tanh's
// 1 - y^2 near |y| = 1, whose error is a few units of 1 (the test inputs and
// projections are of order 1).
inline constexpr Tolerance kElementwiseTolerance{1e-5, 1e-5, 1e-6};
// Batch norm: two per-channel reductions (float on the device, double on the
// host) and a division by the standard deviation. Its input gradient is a
// sum of terms minus two projections of them, which cancel completely when a
// channel holds two values: compare it with batch_norm_gradient_floor added.
inline constexpr Tolerance kNormTolerance{1e-4, 1e-5, 0};
// Optimisers: a handful of float operations per element, sqrt and division
// included.
inline constexpr Tolerance kOptimizerTolerance{1e-5, 1e-6, 0};
// A whole pix2pix step's parameter gradients: ~40 layers forward and back.
// Float32 against float64 on the CPU, the paper and chainer presets at batch
// 1 and 2 reach 3.5e-5 in units of (|e| + rms); 3e-4 leaves room for another
// summation order, and a wrong sign, term or scale is off by far more.
inline constexpr Tolerance kStepTolerance{3e-4, 3e-4, 0};

// Root mean square, scaled by the largest magnitude first so that the squares
// neither overflow nor underflow.
inline double rms(const std::vector<double>& values) {
  double largest = 0;
  for (const double v : values) largest = std::max(largest, std::abs(v));
  if (values.empty() || largest == 0 || !std::isfinite(largest)) return largest;
  double squares = 0;
  for (const double v : values) squares += (v / largest) * (v / largest);
  return largest * std::sqrt(squares / static_cast<double>(values.size()));
}

// The absolute floor for batch norm's input gradient: kNormTolerance.floor
// times the RMS of the terms it sums, grad_y * weight_c / sigma_c, where
// sigma_c is the standard deviation the forward pass divided by (the batch's
// when `batch_statistics`, else the running one). x and grad_y are
// [N, C, ...]; weight and running_var may be undefined (1, and none).
inline double batch_norm_gradient_floor(const Tensor& x, const Tensor& grad_y, const Tensor& weight,
                                        const Tensor& running_var, bool batch_statistics, double eps) {
  const int64_t batch = x.size(0), channels = x.size(1);
  const int64_t spatial = x.numel() / (batch * channels);
  const std::vector<double> xs = x.to_double_vector(), gs = grad_y.to_double_vector();
  const std::vector<double> ws = weight.defined() ? weight.to_double_vector() : std::vector<double>(channels, 1.0);
  double squares = 0;
  for (int64_t c = 0; c < channels; ++c) {
    double variance = 0;
    if (batch_statistics) {
      double mean = 0;
      for (int64_t n = 0; n < batch; ++n)
        for (int64_t i = 0; i < spatial; ++i) mean += xs[static_cast<size_t>((n * channels + c) * spatial + i)];
      mean /= static_cast<double>(batch * spatial);
      for (int64_t n = 0; n < batch; ++n)
        for (int64_t i = 0; i < spatial; ++i) {
          const double d = xs[static_cast<size_t>((n * channels + c) * spatial + i)] - mean;
          variance += d * d;
        }
      variance /= static_cast<double>(batch * spatial);
    } else {
      variance = running_var.to_double_vector()[static_cast<size_t>(c)];
    }
    const double scale = ws[static_cast<size_t>(c)] / std::sqrt(variance + eps);
    for (int64_t n = 0; n < batch; ++n)
      for (int64_t i = 0; i < spatial; ++i) {
        const double term = gs[static_cast<size_t>((n * channels + c) * spatial + i)] * scale;
        squares += term * term;
      }
  }
  return kNormTolerance.floor * std::sqrt(squares / static_cast<double>(x.numel()));
}

// The outcome of one comparison, with the element that came closest to (or
// went furthest past) its limit.
struct Comparison {
  int64_t elements = 0;
  int64_t failures = 0;
  int64_t worst = -1;        // index of the element with the largest |a - e| / allowed
  double worst_ratio = 0;    // that ratio: <= 1 passes
  double actual = 0, expected = 0, allowed = 0;  // at `worst`
  std::string mismatch;      // set when the shapes differ

  bool passed() const { return mismatch.empty() && failures == 0; }

  std::string describe() const {
    std::ostringstream out;
    if (!mismatch.empty()) return mismatch;
    out.precision(9);
    out << failures << " of " << elements << " elements outside the tolerance";
    if (worst >= 0)
      out << "; worst at " << worst << ": actual " << actual << ", expected " << expected << ", |difference| "
          << std::abs(actual - expected) << " against " << allowed << " allowed (" << worst_ratio << "x)";
    return out.str();
  }
};

inline bool same_special(double a, double e) {
  if (std::isnan(e)) return std::isnan(a);
  if (std::isinf(e)) return a == e;
  return false;
}

inline Comparison compare(const std::vector<double>& actual, const std::vector<double>& expected,
                          const Tolerance& tolerance) {
  Comparison result;
  if (actual.size() != expected.size()) {
    result.mismatch = "sizes differ: " + std::to_string(actual.size()) + " against " + std::to_string(expected.size());
    return result;
  }
  result.elements = static_cast<int64_t>(expected.size());
  std::vector<double> finite;
  for (const double v : expected)
    if (std::isfinite(v)) finite.push_back(v);
  const double floor = tolerance.floor * rms(finite) + tolerance.absolute;
  for (size_t i = 0; i < expected.size(); ++i) {
    const double a = actual[i], e = expected[i];
    double ratio = 0;
    const double allowed = tolerance.relative * std::abs(e) + floor;
    if (!std::isfinite(e) || !std::isfinite(a)) {
      ratio = same_special(a, e) ? 0 : INFINITY;
    } else {
      const double difference = std::abs(a - e);
      ratio = difference == 0 ? 0 : allowed > 0 ? difference / allowed : INFINITY;
    }
    if (ratio > 1) ++result.failures;
    if (result.worst < 0 || ratio > result.worst_ratio) {
      result.worst = static_cast<int64_t>(i);
      result.worst_ratio = ratio;
      result.actual = a;
      result.expected = e;
      result.allowed = allowed;
    }
  }
  return result;
}

inline Comparison compare(const Tensor& actual, const Tensor& expected, const Tolerance& tolerance) {
  if (!actual.defined() || !expected.defined()) {
    Comparison result;
    result.mismatch = actual.defined() ? "no expected tensor" : "no actual tensor";
    return result;
  }
  if (actual.shape() != expected.shape()) {
    Comparison result;
    result.mismatch = "shapes differ: " + shape_str(actual.shape()) + " against " + shape_str(expected.shape());
    return result;
  }
  return compare(actual.to_double_vector(), expected.to_double_vector(), tolerance);
}

}  // namespace pixgrad::testing

// CHECK that `actual` matches `expected` within `tolerance`, element by
// element; on failure Catch prints how many elements failed and the worst one.
#define PIXGRAD_CHECK_CLOSE(actual, expected, tolerance)                                         \
  do {                                                                                           \
    const ::pixgrad::testing::Comparison pixgrad_comparison_ =                                   \
        ::pixgrad::testing::compare((actual), (expected), (tolerance));                          \
    INFO(#actual " against " #expected ": " << pixgrad_comparison_.describe());                  \
    CHECK(pixgrad_comparison_.passed());                                                         \
  } while (0)
