#include "gradcheck.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include <pixgrad/core/autograd.h>
#include <pixgrad/core/ops.h>

namespace pixgrad::testing {

namespace {

// CHECKs each element of input i's analytic gradient (from .grad, zero where
// undefined) against central differences of objective.
void check_against_central_differences(const char* what, const std::function<Tensor()>& objective,
                                       const std::vector<Tensor>& inputs, double eps, double tolerance) {
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& input = inputs[i];
    if (!input.requires_grad()) continue;
    REQUIRE(input.dtype() == DType::Float64);
    const std::vector<double> analytic =
        input.grad().defined() ? input.grad().to_double_vector() : std::vector<double>(input.numel(), 0.0);
    double* values = input.data<double>();
    for (int64_t j = 0; j < input.numel(); ++j) {
      const double saved = values[j];
      values[j] = saved + eps;
      const double plus = objective().item();
      values[j] = saved - eps;
      const double minus = objective().item();
      values[j] = saved;
      const double numeric = (plus - minus) / (2 * eps);
      INFO(what << ", input " << i << " " << shape_str(input.shape()) << ", element " << j << ": analytic "
                << analytic[j] << ", numeric " << numeric);
      CHECK(std::abs(analytic[j] - numeric) <= tolerance * std::max(1.0, std::abs(numeric)));
    }
  }
}

}  // namespace

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

  for (const Tensor& input : inputs)
    if (input.requires_grad()) REQUIRE(input.grad().defined());
  NoGradGuard no_grad;
  check_against_central_differences("first order", [&] { return objective(inputs); }, inputs, eps, tolerance);
}

void check_second_order_gradients(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                                  const std::vector<Tensor>& inputs, double eps, double tolerance) {
  std::vector<Tensor> differentiated;
  for (const Tensor& input : inputs)
    if (input.requires_grad()) differentiated.push_back(input);
  REQUIRE_FALSE(differentiated.empty());
  const Tensor projection = random_tensor(f(inputs).shape(), 12345, DType::Float64, -1, 1);
  std::vector<Tensor> second_projections;
  for (size_t i = 0; i < differentiated.size(); ++i)
    second_projections.push_back(random_tensor(differentiated[i].shape(), 777 + i, DType::Float64, -1, 1));
  // h(inputs): its own graph runs through the first backward pass.
  const auto h = [&](const std::vector<Tensor>& xs) {
    std::vector<Tensor> targets;
    for (const Tensor& x : xs)
      if (x.requires_grad()) targets.push_back(x);
    const std::vector<Tensor> first =
        grad(sum(mul(f(xs), projection)), targets, Tensor(), GradOptions().create_graph(true).allow_unused(true));
    Tensor total = Tensor::zeros({}, Device::cpu(), DType::Float64);
    for (size_t i = 0; i < first.size(); ++i)
      if (first[i].defined()) total = add(total, sum(mul(first[i], second_projections[i])));
    return total;
  };

  for (const Tensor& input : inputs) input.zero_grad();
  const Tensor value = h(inputs);
  // A second derivative that is zero everywhere (a linear f) leaves h constant.
  if (value.requires_grad()) value.backward();
  check_against_central_differences("second order", [&] { return h(inputs); }, inputs, eps, tolerance);
}

double max_relative_error(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double scale = 1, worst = 0;
  for (double v : b) scale = std::max(scale, std::abs(v));
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst / scale;
}

}  // namespace pixgrad::testing
