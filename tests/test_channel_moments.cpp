// Channel moments (kernels/channel_moments.h): the records a convolution
// writes beside its output, and a batch norm taking its statistics from them.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include <pixgrad/core/ops.h>
#include <pixgrad/kernels/channel_moments.h>
#include <pixgrad/kernels/conv_settings.h>
#include <pixgrad/layers/conv.h>
#include <pixgrad/layers/forward_hook.h>
#include "gradcheck.h"
#include "environment_scope.h"
#include "moments_check.h"

using namespace pixgrad;
using Catch::Matchers::Contains;

using testing::check_records_describe;

TEST_CASE("combine_records gives a channel's mean and squared deviations from records of any split",
          "[channel_moments]") {
  // Values far from zero (mean 1e4, spread 1): summing squares naively would
  // lose the variance; the records' pairwise combination keeps it.
  std::vector<double> values;
  for (int i = 0; i < 101; ++i) values.push_back(1e4 + std::sin(0.7 * i));
  double mean = 0;
  for (double v : values) mean += v;
  mean /= static_cast<double>(values.size());
  double m2 = 0;
  for (double v : values) m2 += (v - mean) * (v - mean);
  for (int run : {1, 7, 32}) {
    std::vector<kernels::MomentRecord> records;
    for (size_t first = 0; first < values.size(); first += static_cast<size_t>(run)) {
      const int count = static_cast<int>(std::min<size_t>(static_cast<size_t>(run), values.size() - first));
      records.push_back(kernels::moment_record(count, [&](int j) { return values[first + static_cast<size_t>(j)]; }));
    }
    records.push_back({0, 0, 0});  // an empty record counts for nothing
    const kernels::ChannelMoments got = kernels::combine_records(records.data(), static_cast<int64_t>(records.size()));
    INFO("records of " << run << " values");
    CHECK(got.count == 101);
    CHECK(got.mean == Approx(mean).epsilon(1e-14));
    CHECK(got.m2 == Approx(m2).epsilon(1e-9));
  }
}

TEST_CASE("conv2d and conv_transpose2d give their output's channel moments", "[channel_moments]") {
  for (DType dtype : {DType::Float32, DType::Float64}) {
    // Planes of 7x5 and 14x10 pixels: runs of 32 that end inside a plane.
    const Tensor x = testing::random_tensor({3, 4, 14, 10}, 71, dtype, -1, 2);
    const Tensor w = testing::random_tensor({6, 4, 4, 4}, 72, dtype);
    const Tensor b = testing::random_tensor({6}, 73, dtype);
    Tensor moments;
    const Tensor y = conv2d(x, w, b, {2, 1}, &moments);
    check_records_describe(moments, y);

    const Tensor wt = testing::random_tensor({4, 5, 4, 4}, 74, dtype);
    const Tensor up = conv_transpose2d(x, wt, Tensor(), {2, 1}, &moments);
    check_records_describe(moments, up);
    // The bias is added after the moments are taken: none then.
    conv_transpose2d(x, wt, testing::random_tensor({5}, 75, dtype), {2, 1}, &moments);
    CHECK_FALSE(moments.defined());
  }
}

TEST_CASE("batch_norm with its input's moments gives what it computes from the input", "[channel_moments]") {
  for (DType dtype : {DType::Float32, DType::Float64}) {
    const Tensor x = testing::random_tensor({2, 5, 9, 11}, 81, dtype, -1, 2);
    const Tensor w = testing::random_tensor({7, 5, 3, 3}, 82, dtype);
    Tensor moments;
    const Tensor y = conv2d(x, w, Tensor(), {1, 1}, &moments);
    REQUIRE(moments.defined());
    const Tensor gamma = testing::random_tensor({7}, 83, dtype, 0.5, 1.5);
    const Tensor beta = testing::random_tensor({7}, 84, dtype);
    Tensor mean_a = Tensor::zeros({7}).to(dtype), var_a = Tensor::ones({7}).to(dtype);
    Tensor mean_b = Tensor::zeros({7}).to(dtype), var_b = Tensor::ones({7}).to(dtype);
    const BatchNormEpilogue after = BatchNormEpilogue::leaky_relu(0.2);
    const Tensor from_moments = batch_norm(y, gamma, beta, mean_a, var_a, {}, after, Tensor(), moments);
    const Tensor from_input = batch_norm(y, gamma, beta, mean_b, var_b, {}, after);
    // The same statistics to within double rounding, so the same results
    // to within one rounding of the type.
    const double ulp = dtype == DType::Float32 ? 1.2e-7 : 2.3e-16;
    testing::check_within_roundings(from_moments, from_input, ulp, 1.0);
    testing::check_within_roundings(mean_a, mean_b, ulp, 0.1);
    testing::check_within_roundings(var_a, var_b, ulp, 0.1);
  }
}

TEST_CASE("batch_norm refuses moments that are not its input's", "[channel_moments]") {
  const Tensor x = testing::random_tensor({1, 3, 4, 4}, 91, DType::Float32);
  const auto normalise = [&](const Tensor& moments, bool training = true) {
    const Tensor running_mean = Tensor::zeros({3}), running_var = Tensor::ones({3});
    return batch_norm(x, Tensor(), Tensor(), running_mean, running_var, {training}, {}, Tensor(), moments);
  };
  CHECK_THROWS_WITH(normalise(Tensor::zeros({4, 1, 3}, Device::cpu(), DType::Float64)),
                    Contains("input_moments [4, 1, 3]") && Contains("[3, R, 3] float64, R >= 1"));
  // Checked in evaluation too, where running statistics leave them unused.
  CHECK_THROWS_WITH(normalise(Tensor::zeros({3, 1, 3}), false),
                    Contains("are not the channel moments of input [1, 3, 4, 4]"));
  // Too few records for 16 values per channel at 32 values a record: none.
  CHECK_THROWS_WITH(normalise(Tensor::zeros({3, 0, 3}, Device::cpu(), DType::Float64)), Contains("R >= 1"));
  // Moments of a larger tensor with as many channels: their counts give them away.
  Tensor larger;
  conv2d(testing::random_tensor({2, 2, 9, 9}, 92, DType::Float32),
         testing::random_tensor({3, 2, 3, 3}, 93, DType::Float32), Tensor(), {1, 1}, &larger);
  CHECK_THROWS_WITH(normalise(larger), Contains("the input moments of 3 of 3 channels count other than the 16 values"));
  // Refused before anything is drawn: a fused dropout leaves the generator as it was.
  Generator generator(5);
  BatchNormEpilogue dropout = BatchNormEpilogue::dropout_only(0.5);
  dropout.generator = &generator;
  CHECK_THROWS(batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), {}, dropout, Tensor(), larger));
  CHECK(generator.offset() == 0);
  Tensor own;
  const Tensor y = conv2d(testing::random_tensor({1, 2, 4, 4}, 94, DType::Float32),
                          testing::random_tensor({3, 2, 3, 3}, 95, DType::Float32), Tensor(), {1, 1}, &own);
  CHECK_NOTHROW(batch_norm(y, Tensor(), Tensor(), Tensor(), Tensor(), {}, {}, Tensor(), own));
}

TEST_CASE("Conv2d gives no moments while a forward hook may change its output", "[channel_moments]") {
  nn::Conv2d conv(nn::Conv2dOptions(2, 3, 3).padding(1));
  const Tensor x = testing::random_tensor({1, 2, 5, 5}, 95, DType::Float32);
  Tensor moments;
  conv.forward(x, &moments);
  CHECK(moments.defined());
  nn::ForwardHookGuard hook([](const nn::Module&, const Tensor&, const Tensor& output) { return output; });
  conv.forward(x, &moments);
  CHECK_FALSE(moments.defined());
}

TEST_CASE("PIXGRAD_CONV_MOMENTS and set_conv_moments switch the moments off and on", "[channel_moments]") {
  const auto asked = [](const std::string& value) {
    const testing::EnvironmentScope environment({"PIXGRAD_CONV_MOMENTS"}, {{"PIXGRAD_CONV_MOMENTS", value}});
    return kernels::conv_moments_from_environment();
  };
  CHECK(asked("on"));
  CHECK_FALSE(asked("off"));
  CHECK(asked(""));  // empty: as unset
  CHECK_THROWS_WITH(asked("false"), "PIXGRAD_CONV_MOMENTS: unknown 'false' (expected off or on)");

  const Tensor x = testing::random_tensor({1, 2, 6, 6}, 97, DType::Float32);
  const Tensor w = testing::random_tensor({3, 2, 3, 3}, 98, DType::Float32);
  const bool before = kernels::conv_moments();
  Tensor moments;
  kernels::set_conv_moments(false);
  conv2d(x, w, Tensor(), {1, 1}, &moments);
  const bool given_when_off = moments.defined();
  kernels::set_conv_moments(true);
  conv2d(x, w, Tensor(), {1, 1}, &moments);
  const bool given_when_on = moments.defined();
  kernels::set_conv_moments(before);
  CHECK_FALSE(given_when_off);
  CHECK(given_when_on);
}
