// batch_norm (training, eval, running statistics) and dropout (Philox masks).
#include <catch2/catch.hpp>

#include <cmath>

#include <pixgrad/core/ops.h>
#include <pixgrad/kernels/philox.h>
#include "gradcheck.h"

using namespace pixgrad;
using Catch::Matchers::Contains;

TEST_CASE("batch_norm training normalises per channel and updates running statistics", "[ops][batch_norm]") {
  const int64_t N = 3, C = 4, S = 5 * 7;
  const Tensor x = testing::random_tensor({N, C, 5, 7}, 61, DType::Float32, -2, 3);
  const Tensor w = testing::random_tensor({C}, 62, DType::Float32, 0.5, 1.5);
  const Tensor b = testing::random_tensor({C}, 63, DType::Float32);
  Tensor running_mean = Tensor::full({C}, 0.25), running_var = Tensor::full({C}, 2.0);
  const Tensor y = batch_norm(x, w, b, running_mean, running_var, {true, 0.1, 1e-5});

  const std::vector<double> xv = x.to_double_vector(), yv = y.to_double_vector();
  const std::vector<double> wv = w.to_double_vector(), bv = b.to_double_vector();
  const std::vector<double> rm = running_mean.to_double_vector(), rv = running_var.to_double_vector();
  for (int64_t c = 0; c < C; ++c) {
    double mean = 0, var = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) mean += xv[(n * C + c) * S + s];
    mean /= N * S;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) var += std::pow(xv[(n * C + c) * S + s] - mean, 2);
    const double biased = var / (N * S), unbiased = var / (N * S - 1);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) {
        const size_t i = (n * C + c) * S + s;
        CHECK(yv[i] == Approx((xv[i] - mean) / std::sqrt(biased + 1e-5) * wv[c] + bv[c]).margin(1e-5));
      }
    CHECK(rm[c] == Approx(0.9 * 0.25 + 0.1 * mean).epsilon(1e-5));
    CHECK(rv[c] == Approx(0.9 * 2.0 + 0.1 * unbiased).epsilon(1e-5));
  }
}

TEST_CASE("batch_norm eval uses the running statistics and leaves them alone", "[ops][batch_norm]") {
  const Tensor x = testing::random_tensor({2, 3, 4, 4}, 64, DType::Float32);
  const Tensor running_mean = Tensor::from_vector(std::vector<float>{0.1f, -0.2f, 0.3f}, {3});
  const Tensor running_var = Tensor::from_vector(std::vector<float>{0.5f, 1.5f, 2.0f}, {3});
  const Tensor y = batch_norm(x, Tensor(), Tensor(), running_mean, running_var, {false, 0.1, 2e-5});
  const std::vector<double> xv = x.to_double_vector(), yv = y.to_double_vector();
  const double m[] = {0.1, -0.2, 0.3}, v[] = {0.5, 1.5, 2.0};
  for (size_t i = 0; i < xv.size(); ++i) {
    const size_t c = (i / 16) % 3;
    CHECK(yv[i] == Approx((xv[i] - m[c]) / std::sqrt(v[c] + 2e-5)).margin(1e-6));
  }
  CHECK(running_mean.to_vector() == std::vector<float>{0.1f, -0.2f, 0.3f});
}

TEST_CASE("batch_norm gradients match finite differences", "[ops][batch_norm][gradcheck]") {
  Tensor x = testing::random_tensor({3, 2, 3, 5}, 65).set_requires_grad();
  Tensor w = testing::random_tensor({2}, 66, DType::Float64, 0.5, 1.5).set_requires_grad();
  Tensor b = testing::random_tensor({2}, 67).set_requires_grad();
  SECTION("training, affine") {
    testing::check_gradients(
        [](const std::vector<Tensor>& in) { return batch_norm(in[0], in[1], in[2], Tensor(), Tensor(), {true}); },
        {x, w, b}, 1e-6, 1e-5);
  }
  SECTION("training, no affine, batch 1") {
    Tensor single = testing::random_tensor({1, 3, 4, 3}, 68).set_requires_grad();
    testing::check_gradients(
        [](const std::vector<Tensor>& in) { return batch_norm(in[0], Tensor(), Tensor(), Tensor(), Tensor(), {true}); },
        {single}, 1e-6, 1e-5);
  }
  SECTION("eval with running statistics") {
    const Tensor rm = testing::random_tensor({2}, 69), rv = testing::random_tensor({2}, 70, DType::Float64, 0.5, 2);
    testing::check_gradients(
        [&](const std::vector<Tensor>& in) { return batch_norm(in[0], in[1], in[2], rm, rv, {false}); }, {x, w, b});
  }
}

TEST_CASE("batch_norm float and double agree", "[ops][batch_norm]") {
  Tensor x64 = testing::random_tensor({2, 5, 6, 7}, 71).set_requires_grad();
  Tensor w64 = testing::random_tensor({5}, 72).set_requires_grad();
  Tensor x32 = x64.detach().to(DType::Float32).set_requires_grad();
  Tensor w32 = w64.detach().to(DType::Float32).set_requires_grad();
  const Tensor r = testing::random_tensor({2, 5, 6, 7}, 73);
  sum(mul(batch_norm(x64, w64, Tensor(), Tensor(), Tensor()), r)).backward();
  sum(mul(batch_norm(x32, w32, Tensor(), Tensor(), Tensor()), r.to(DType::Float32))).backward();
  CHECK(testing::max_relative_error(x32.grad().to_double_vector(), x64.grad().to_double_vector()) < 1e-5);
  CHECK(testing::max_relative_error(w32.grad().to_double_vector(), w64.grad().to_double_vector()) < 1e-5);
}

TEST_CASE("batch_norm rejects bad arguments", "[ops][batch_norm][errors]") {
  const Tensor x = Tensor::zeros({2, 3, 4, 4});
  CHECK_THROWS_WITH(batch_norm(x, Tensor::ones({4}), Tensor(), Tensor(), Tensor()),
                    Contains("batch_norm") && Contains("weight") && Contains("[4]") && Contains("[2, 3, 4, 4]"));
  CHECK_THROWS_WITH(batch_norm(Tensor::zeros({1, 3, 1, 1}), Tensor(), Tensor(), Tensor(), Tensor()),
                    Contains("one value per channel"));
  CHECK_THROWS_WITH(batch_norm(x, Tensor(), Tensor(), Tensor::zeros({3}), Tensor()), Contains("running_var"));
}

TEST_CASE("dropout keeps 1-p of the elements, scaled, with a Philox mask", "[ops][dropout]") {
  const int64_t n = 200000;
  const double p = 0.3;
  const Tensor x = Tensor::ones({n});
  Generator generator(77, 5);
  const Tensor y = dropout(x, p, true, generator);
  CHECK(generator.offset() == 5 + philox::uniform_blocks(n));
  const std::vector<float> v = y.to_vector();
  int64_t kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    const bool expect_kept = philox::uniform(77, 5, i) >= p;
    REQUIRE(v[i] == (expect_kept ? Approx(1 / (1 - p)) : Approx(0)));
    kept += expect_kept;
  }
  CHECK(static_cast<double>(kept) / n == Approx(1 - p).margin(0.005));
}

TEST_CASE("dropout is the identity in eval and differentiates through its mask", "[ops][dropout][gradcheck]") {
  const Tensor x = testing::random_tensor({3, 4}, 78, DType::Float32);
  CHECK(dropout(x, 0.5, false).to_vector() == x.to_vector());
  Tensor leaf = testing::random_tensor({4, 5}, 79).set_requires_grad();
  testing::check_gradients(
      [](const std::vector<Tensor>& in) {
        Generator fixed(3);  // the same mask on every evaluation
        return dropout(in[0], 0.5, true, fixed);
      },
      {leaf});
  CHECK_THROWS_WITH(dropout(x, 1.5), Contains("dropout") && Contains("1.5"));
}
