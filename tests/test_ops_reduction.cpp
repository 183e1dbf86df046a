// sum, mean, l1_loss and concat.
#include <catch2/catch.hpp>

#include <cmath>

#include <pixgrad/core/ops.h>
#include "gradcheck.h"

using namespace pixgrad;
using Catch::Matchers::Contains;

TEST_CASE("sum and mean reduce every element", "[ops][reduction]") {
  const Tensor x = testing::random_tensor({3, 7, 11}, 41, DType::Float32);
  double total = 0;
  for (double v : x.to_double_vector()) total += v;
  CHECK(sum(x).item() == Approx(total).epsilon(1e-6));
  CHECK(mean(x).item() == Approx(total / 231).epsilon(1e-6));
  CHECK(sum(x).shape() == Shape{});
  Tensor y = testing::random_tensor({2, 3, 4}, 42).set_requires_grad();
  testing::check_gradients([](const std::vector<Tensor>& in) { return sum(in[0]); }, {y});
  testing::check_gradients([](const std::vector<Tensor>& in) { return mean(in[0]); }, {y});
}

TEST_CASE("l1_loss is the mean absolute error", "[ops][reduction][loss]") {
  const Tensor p = testing::random_tensor({2, 3, 5, 5}, 43, DType::Float32);
  const Tensor t = testing::random_tensor({2, 3, 5, 5}, 44, DType::Float32);
  const std::vector<double> pv = p.to_double_vector(), tv = t.to_double_vector();
  double total = 0;
  for (size_t i = 0; i < pv.size(); ++i) total += std::fabs(pv[i] - tv[i]);
  CHECK(l1_loss(p, t).item() == Approx(total / pv.size()).epsilon(1e-6));
  Tensor a = testing::random_tensor({2, 3, 3}, 45).set_requires_grad();
  Tensor b = testing::random_tensor({2, 3, 3}, 46).set_requires_grad();
  testing::check_gradients([](const std::vector<Tensor>& in) { return l1_loss(in[0], in[1]); }, {a, b});
  CHECK_THROWS_WITH(l1_loss(p, Tensor::zeros({2, 3, 5, 4})), Contains("l1_loss") && Contains("[2, 3, 5, 4]"));
}

TEST_CASE("concat joins along channels and splits the gradient", "[ops][shape]") {
  const Tensor a = Tensor::from_vector(std::vector<float>{1, 2, 3, 4}, {2, 1, 2});
  const Tensor b = Tensor::from_vector(std::vector<float>{5, 6, 7, 8, 9, 10, 11, 12}, {2, 2, 2});
  const Tensor c = concat({a, b}, 1);
  CHECK(c.shape() == Shape{2, 3, 2});
  CHECK(c.to_vector() == std::vector<float>{1, 2, 5, 6, 7, 8, 3, 4, 9, 10, 11, 12});
  CHECK(concat({a, a}, 0).to_vector() == std::vector<float>{1, 2, 3, 4, 1, 2, 3, 4});
  Tensor x = testing::random_tensor({2, 3, 3, 2}, 47).set_requires_grad();
  Tensor y = testing::random_tensor({2, 1, 3, 2}, 48).set_requires_grad();
  testing::check_gradients([](const std::vector<Tensor>& in) { return concat({in[0], in[1], in[0]}, 1); }, {x, y});
  testing::check_gradients([](const std::vector<Tensor>& in) { return concat({in[0], in[0]}, 3); }, {x});
  CHECK_THROWS_WITH(concat({a, Tensor::zeros({3, 2, 2})}, 1), Contains("concat") && Contains("[3, 2, 2]"));
  CHECK_THROWS_WITH(concat({a}, 3), Contains("concat") && Contains("out of range"));
}
