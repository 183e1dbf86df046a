#include "gradcheck.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include <pixgrad/core/autograd.h>
#include <pixgrad/core/ops.h>

namespace pixgrad::testing {

Tensor random_tensor(const Shape& shape, uint64_t seed, DType dtype, double low, double high) {
  Generator generator(seed);
  return Tensor::uniform(shape, low, high, generator, Device::cpu(), dtype);
}

void check_gradients(const std::function<Tensor(const std::vector<Tensor>&)>& f, const std::vector<Tensor>& inputs,
                     double eps, double tolerance) {
  const Tensor probe_output = [&] {
    NoGradGuard no_grad;
    return f(inputs);
  }();
  // A random projection makes every output element matter with a different
  // weight; centring it on zero keeps the objective, and so its rounding
  // noise, small.
  const Tensor projection = random_tensor(probe_output.shape(), 12345, DType::Float64, -1, 1);
  auto objective = [&](const std::vector<Tensor>& xs) { return sum(mul(f(xs), projection)); };

  for (const Tensor& input : inputs) input.zero_grad();
  objective(inputs).backward();

  NoGradGuard no_grad;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& input = inputs[i];
    if (!input.requires_grad()) continue;
    REQUIRE(input.dtype() == DType::Float64);
    REQUIRE(input.grad().defined());
    const std::vector<double> analytic = input.grad().to_double_vector();
    double* values = input.data<double>();
    for (int64_t j = 0; j < input.numel(); ++j) {
      const double saved = values[j];
      values[j] = saved + eps;
      const double plus = objective(inputs).item();
      values[j] = saved - eps;
      const double minus = objective(inputs).item();
      values[j] = saved;
      const double numeric = (plus - minus) / (2 * eps);
      INFO("input " << i << " " << shape_str(input.shape()) << ", element " << j << ": analytic " << analytic[j]
                    << ", numeric " << numeric);
      CHECK(std::abs(analytic[j] - numeric) <= tolerance * std::max(1.0, std::abs(numeric)));
    }
  }
}

double max_relative_error(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double scale = 1, worst = 0;
  for (double v : b) scale = std::max(scale, std::abs(v));
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst / scale;
}

}  // namespace pixgrad::testing
