// The autograd engine: graph walking, accumulation, detach, no-grad, freeing.
#include <catch2/catch.hpp>

#include <cmath>

#include <pixgrad/core/autograd.h>
#include <pixgrad/core/ops.h>
#include "gradcheck.h"

using namespace pixgrad;
using Catch::Matchers::Contains;

namespace {
Tensor scalar_leaf(double value) {
  Tensor t = Tensor::full({}, value, Device::cpu(), DType::Float64);
  t.set_requires_grad();
  return t;
}
}  // namespace

TEST_CASE("a tensor used twice gets the sum of both gradients", "[autograd]") {
  Tensor x = scalar_leaf(3);
  Tensor y = mul(x, x);  // dy/dx = 2x
  y.backward();
  CHECK(x.grad().item() == Approx(6));
}

TEST_CASE("gradients flow through a diamond in topological order", "[autograd]") {
  Tensor x = scalar_leaf(2);
  Tensor a = mul(x, 3.0);            // 3x
  Tensor b = mul(a, a);              // 9x^2
  Tensor c = add(mul(a, 2.0), b);    // 6x + 9x^2, d/dx = 6 + 18x = 42
  c.backward();
  CHECK(x.grad().item() == Approx(42));
}

TEST_CASE("leaf gradients accumulate across backward calls until cleared", "[autograd]") {
  Tensor x = scalar_leaf(1.5);
  mul(x, 4.0).backward();
  mul(x, 4.0).backward();
  CHECK(x.grad().item() == Approx(8));
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("detach cuts the graph", "[autograd]") {
  Tensor x = scalar_leaf(2);
  Tensor y = mul(x, x);
  Tensor z = add(mul(y.detach(), x), y);  // treats y as constant in the first term: d/dx = y + 2x = 8
  z.backward();
  CHECK(x.grad().item() == Approx(8));
  CHECK_FALSE(y.detach().requires_grad());
}

TEST_CASE("no-grad guard records nothing", "[autograd]") {
  Tensor x = scalar_leaf(2);
  Tensor y;
  {
    NoGradGuard guard;
    y = mul(x, x);
    CHECK_FALSE(grad_mode_enabled());
  }
  CHECK(grad_mode_enabled());
  CHECK_FALSE(y.requires_grad());
  CHECK(y.is_leaf());
  CHECK_THROWS_WITH(y.backward(), Contains("does not require grad"));
}

TEST_CASE("the graph is freed after backward", "[autograd]") {
  Tensor x = scalar_leaf(2);
  Tensor y = mul(x, 5.0);
  y.backward();
  REQUIRE(y.grad_fn() != nullptr);
  CHECK(y.grad_fn()->released);
  CHECK(y.grad_fn()->inputs.empty());
  CHECK_THROWS_WITH(y.backward(), Contains("already freed") && Contains("mul_scalar"));
}

TEST_CASE("backward from a non-scalar needs a gradient of the same shape", "[autograd][errors]") {
  Tensor x = testing::random_tensor({2, 3}, 4);
  x.set_requires_grad();
  Tensor y = mul(x, 2.0);
  CHECK_THROWS_WITH(y.backward(), Contains("not a scalar") && Contains("[2, 3]"));
  CHECK_THROWS_WITH(y.backward(Tensor::ones({3, 2}, Device::cpu(), DType::Float64)), Contains("[3, 2]"));
  y.backward(Tensor::full({2, 3}, 0.5, Device::cpu(), DType::Float64));
  CHECK(x.grad().to_double_vector() == std::vector<double>(6, 1.0));
}

TEST_CASE("only leaves can be flagged, only recorded inputs get gradients", "[autograd]") {
  Tensor x = scalar_leaf(1);
  Tensor constant = Tensor::full({}, 4, Device::cpu(), DType::Float64);
  Tensor y = mul(x, constant);
  CHECK_THROWS_WITH(y.set_requires_grad(false), Contains("leaf"));
  y.backward();
  CHECK(x.grad().item() == Approx(4));
  CHECK_FALSE(constant.grad().defined());
}

TEST_CASE("retain_graph allows a second backward, unchain_backward cuts in place", "[autograd]") {
  Tensor x = scalar_leaf(3);
  Tensor w = scalar_leaf(2);
  Tensor h = mul(x, x);      // 9, dh/dx = 6
  Tensor y = mul(h, w);      // 18
  y.backward(Tensor(), /*retain_graph=*/true);
  CHECK(x.grad().item() == Approx(12));  // w * 2x
  CHECK(w.grad().item() == Approx(9));
  x.zero_grad();
  w.zero_grad();
  h.unchain_backward();  // the graph below h is cut for the mul that already consumed it
  y.backward();
  CHECK_FALSE(x.grad().defined());
  CHECK(w.grad().item() == Approx(9));
}

TEST_CASE("an input that did not require a gradient when the op ran gets none from it", "[autograd]") {
  // As in PyTorch: what the graph computes is fixed when it is recorded, so
  // a parameter frozen during the forward pass and unfrozen before the
  // backward pass gets no gradient from that pass.
  Tensor x = scalar_leaf(2);
  Tensor w = Tensor::full({}, 3.0, Device::cpu(), DType::Float64);
  const Tensor y = mul(x, w);
  w.set_requires_grad();
  y.backward();
  CHECK_FALSE(w.grad().defined());
  CHECK(x.grad().item() == 3);
}

TEST_CASE("record() guards custom ops against silent mistakes", "[autograd][errors]") {
  Tensor x = scalar_leaf(2);
  // A backward computed outside autograd (here a constant) is first-order
  // only by default: create_graph through it is an error, not a wrong
  // second derivative.
  const auto cube = [](const Tensor& in) {
    Tensor out = Tensor::full({}, std::pow(in.item(), 3), Device::cpu(), DType::Float64);
    const double slope = 3 * in.item() * in.item();
    return record("my_cube", out, {in}, [slope](const Tensor& g, const BackwardContext&) {
      return std::vector<Tensor>{mul(g, slope)};
    });
  };
  const Tensor first = grad(cube(x), {x}, Tensor(), GradOptions().retain_graph(true))[0];
  CHECK(first.item() == Approx(12));
  CHECK_THROWS_WITH(grad(cube(x), {x}, Tensor(), GradOptions().create_graph(true)),
                    Contains("'my_cube' cannot be differentiated twice"));

  // The output must be a new tensor: not an input, not another op's output.
  const Tensor doubled = mul(x, 2.0);
  const BackwardFunction identity = [](const Tensor& g, const BackwardContext&) { return std::vector<Tensor>{g}; };
  CHECK_THROWS_WITH(record("reverse", doubled, {doubled}, identity),
                    Contains("'reverse'") && Contains("already produced by 'mul_scalar'"));
  CHECK_THROWS_WITH(record("alias", x, {x}, identity), Contains("'alias'") && Contains("leaf"));
  CHECK(x.is_leaf());

  // A backward that returns a gradient of another dtype is named.
  const Tensor y = record("wrong_dtype", Tensor::full({}, 1.0, Device::cpu(), DType::Float64), {x},
                          [](const Tensor&, const BackwardContext&) {
                            return std::vector<Tensor>{Tensor::ones({}, Device::cpu(), DType::Float32)};
                          });
  CHECK_THROWS_WITH(y.backward(), Contains("'wrong_dtype' gave a float32 gradient"));
}
