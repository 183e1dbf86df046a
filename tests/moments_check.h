// Checks a tensor's channel moments (kernels/channel_moments.h) against the
// tensor, shared by the CPU and CUDA suites.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include <pixgrad/core/tensor.h>
#include <pixgrad/kernels/channel_moments.h>

namespace pixgrad::testing {

// Each channel of x [N, C, H, W] from `records` [C, R, 3] against a two-pass
// sum over x itself, in double: the count exactly, the mean and the sum of
// squared deviations within 1e-12 of their scale.
inline void check_records_describe(const Tensor& records, const Tensor& x) {
  REQUIRE(records.defined());
  const int64_t N = x.size(0), C = x.size(1), S = x.size(2) * x.size(3);
  REQUIRE(records.shape() == Shape{C, records.size(1), 3});
  const std::vector<double> values = x.to_double_vector(), raw = records.to_double_vector();
  const auto* all = reinterpret_cast<const kernels::MomentRecord*>(raw.data());
  int64_t wrong = 0;
  for (int64_t c = 0; c < C; ++c) {
    double sum = 0, largest = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < S; ++i) {
        sum += values[(n * C + c) * S + i];
        largest = std::max(largest, std::abs(values[(n * C + c) * S + i]));
      }
    const double count = static_cast<double>(N * S), mean = sum / count;
    double m2 = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < S; ++i) m2 += std::pow(values[(n * C + c) * S + i] - mean, 2);
    const kernels::ChannelMoments got = kernels::combine_records(all + c * records.size(1), records.size(1));
    const bool right = got.count == count && std::abs(got.mean - mean) <= 1e-12 * largest &&
                       std::abs(got.m2 - m2) <= 1e-12 * count * largest * largest;
    if (!right) {
      UNSCOPED_INFO("channel " << c << ": count " << got.count << " (want " << count << "), mean " << got.mean
                               << " (" << mean << "), m2 " << got.m2 << " (" << m2 << ")");
      ++wrong;
    }
  }
  CHECK(wrong == 0);
}

// a and b element by element within four roundings of their type (`ulp`:
// its relative rounding step) of b's magnitude plus `scale`: what two sets
// of statistics equal to within double rounding leave between two results.
inline void check_within_roundings(const Tensor& a, const Tensor& b, double ulp, double scale) {
  const std::vector<double> av = a.to_double_vector(), bv = b.to_double_vector();
  REQUIRE(av.size() == bv.size());
  int64_t outside = 0;
  for (size_t i = 0; i < av.size(); ++i) outside += std::abs(av[i] - bv[i]) <= 4 * ulp * (std::abs(bv[i]) + scale) ? 0 : 1;
  CHECK(outside == 0);
}

}  // namespace pixgrad::testing
