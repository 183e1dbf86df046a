// Activations and arithmetic: forward against std:: definitions, backward
// against central differences in double, float kernels against double ones.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>

#include <pixgrad/core/ops.h>
#include "gradcheck.h"

using namespace pixgrad;
using Catch::Matchers::Contains;

namespace {

struct UnaryCase {
  const char* name;
  std::function<Tensor(const Tensor&)> op;
  std::function<double(double)> reference;
};

std::vector<UnaryCase> unary_cases() {
  return {
      {"relu", [](const Tensor& x) { return relu(x); }, [](double v) { return v > 0 ? v : 0.0; }},
      {"leaky_relu", [](const Tensor& x) { return leaky_relu(x, 0.2); }, [](double v) { return v > 0 ? v : 0.2 * v; }},
      {"tanh", [](const Tensor& x) { return tanh(x); }, [](double v) { return std::tanh(v); }},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, [](double v) { return 1 / (1 + std::exp(-v)); }},
      {"softplus", [](const Tensor& x) { return softplus(x); }, [](double v) { return std::log1p(std::exp(v)); }},
      {"abs", [](const Tensor& x) { return abs(x); }, [](double v) { return std::fabs(v); }},
      {"neg", [](const Tensor& x) { return neg(x); }, [](double v) { return -v; }},
  };
}

}  // namespace

TEST_CASE("unary ops match their definitions", "[ops][activation]") {
  for (const UnaryCase& c : unary_cases()) {
    SECTION(c.name) {
      const Tensor x = testing::random_tensor({3, 5, 7}, 21, DType::Float32, -4, 4);
      const std::vector<double> input = x.to_double_vector();
      const std::vector<double> output = c.op(x).to_double_vector();
      for (size_t i = 0; i < input.size(); ++i) CHECK(output[i] == Approx(c.reference(input[i])).epsilon(1e-6).margin(1e-7));
    }
  }
}

TEST_CASE("unary op gradients match finite differences", "[ops][activation][gradcheck]") {
  for (const UnaryCase& c : unary_cases()) {
    SECTION(c.name) {
      Tensor x = testing::random_tensor({2, 3, 5}, 22, DType::Float64, -3, 3).set_requires_grad();
      testing::check_gradients([&](const std::vector<Tensor>& in) { return c.op(in[0]); }, {x});
    }
  }
}

TEST_CASE("float and double unary backward agree", "[ops][activation]") {
  for (const UnaryCase& c : unary_cases()) {
    SECTION(c.name) {
      Tensor x64 = testing::random_tensor({4, 9}, 23, DType::Float64, -3, 3).set_requires_grad();
      Tensor x32 = x64.detach().to(DType::Float32).set_requires_grad();
      sum(c.op(x64)).backward();
      sum(c.op(x32)).backward();
      CHECK(testing::max_relative_error(x32.grad().to_double_vector(), x64.grad().to_double_vector()) < 1e-6);
    }
  }
}

TEST_CASE("softplus is stable for large |x|", "[ops][activation]") {
  Tensor x = Tensor::from_vector(std::vector<float>{-1000, -100, -20, 0, 20, 100, 1000}, {7});
  x.set_requires_grad();
  Tensor y = softplus(x);
  const std::vector<double> v = y.to_double_vector();
  CHECK(v[0] == 0.0);
  CHECK(v[1] >= 0);  // e^-100 is below float's normal range
  CHECK(v[1] < 1e-37);
  CHECK(v[2] == Approx(std::exp(-20.0)).epsilon(1e-5));
  CHECK(v[3] == Approx(std::log(2.0)));
  CHECK(v[4] == Approx(20.0));
  CHECK(v[5] == 100.0f);
  CHECK(v[6] == 1000.0f);
  sum(y).backward();
  const std::vector<double> g = x.grad().to_double_vector();
  CHECK(g[0] == 0.0);
  CHECK(g[3] == Approx(0.5));
  CHECK(g[6] == 1.0);
  for (double d : g) CHECK(std::isfinite(d));
}

TEST_CASE("tensor-tensor arithmetic matches and differentiates", "[ops][arithmetic]") {
  const Tensor a32 = testing::random_tensor({3, 4}, 31, DType::Float32);
  const Tensor b32 = testing::random_tensor({3, 4}, 32, DType::Float32, 0.5, 2);
  const std::vector<double> a = a32.to_double_vector(), b = b32.to_double_vector();
  const std::vector<double> s = add(a32, b32).to_double_vector(), d = sub(a32, b32).to_double_vector();
  const std::vector<double> p = mul(a32, b32).to_double_vector(), q = div(a32, b32).to_double_vector();
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(s[i] == Approx(a[i] + b[i]));
    CHECK(d[i] == Approx(a[i] - b[i]));
    CHECK(p[i] == Approx(a[i] * b[i]));
    CHECK(q[i] == Approx(a[i] / b[i]));
  }
  Tensor x = testing::random_tensor({2, 3}, 33).set_requires_grad();
  Tensor y = testing::random_tensor({2, 3}, 34, DType::Float64, 0.5, 2).set_requires_grad();
  testing::check_gradients([](const std::vector<Tensor>& in) { return add(in[0], in[1]); }, {x, y});
  testing::check_gradients([](const std::vector<Tensor>& in) { return sub(in[0], in[1]); }, {x, y});
  testing::check_gradients([](const std::vector<Tensor>& in) { return mul(in[0], in[1]); }, {x, y});
  testing::check_gradients([](const std::vector<Tensor>& in) { return div(in[0], in[1]); }, {x, y});
}

TEST_CASE("tensor-scalar arithmetic matches and differentiates", "[ops][arithmetic]") {
  const Tensor a = Tensor::from_vector(std::vector<float>{1, -2, 4}, {3});
  CHECK((a + 1.0).to_vector() == std::vector<float>{2, -1, 5});
  CHECK((a - 1.0).to_vector() == std::vector<float>{0, -3, 3});
  CHECK((a * 2.0).to_vector() == std::vector<float>{2, -4, 8});
  CHECK((a / 2.0).to_vector() == std::vector<float>{0.5f, -1, 2});
  CHECK((-a).to_vector() == std::vector<float>{-1, 2, -4});
  Tensor x = testing::random_tensor({5}, 35).set_requires_grad();
  testing::check_gradients(
      [](const std::vector<Tensor>& in) { return div(mul(sub(add(in[0], 0.5), 2.0), 3.0), -4.0); }, {x});
}

TEST_CASE("arithmetic on mismatched operands names op and shapes", "[ops][errors]") {
  const Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({3, 2});
  CHECK_THROWS_WITH(add(a, b), Contains("add") && Contains("[2, 3]") && Contains("[3, 2]"));
  CHECK_THROWS_WITH(mul(a, Tensor::zeros({2, 3}, Device::cpu(), DType::Float64)), Contains("mul") && Contains("float64"));
  CHECK_THROWS_WITH(relu(Tensor::zeros({0, 3})), Contains("relu") && Contains("empty") && Contains("[0, 3]"));
  CHECK_THROWS_WITH(tanh(Tensor()), Contains("tanh") && Contains("undefined"));
}

TEST_CASE("relu and leaky_relu keep a NaN a NaN, as PyTorch does", "[ops][elementwise][nan]") {
  // A diverged activation must not turn into a plausible zero downstream.
  for (const DType dtype : {DType::Float32, DType::Float64}) {
    INFO(to_string(dtype));
    // Long enough for the vectorised body and the tail.
    std::vector<double> values(37, -1.5);
    values[0] = values[17] = values[36] = std::nan("");
    const Tensor x = Tensor::from_vector(values, {37}).to(dtype);
    for (const Tensor& y : {relu(x), leaky_relu(x, 0.2)}) {
      const std::vector<double> out = y.to_double_vector();
      for (const size_t i : {size_t{0}, size_t{17}, size_t{36}}) CHECK(std::isnan(out[i]));
      CHECK(out[1] <= 0);
    }
  }
}
