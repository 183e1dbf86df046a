// Gradients of gradients (create_graph): every op a gradient penalty goes
// through, checked in float64 against central differences of its first
// gradient (tests/gradcheck.h), and the one-line errors of the ops that do
// not support it. PyTorch fixtures for whole penalties: test_gan_penalties.cpp.
#include <catch2/catch.hpp>

#include <pixgrad/core/autograd.h>
#include <pixgrad/core/ops.h>
#include "elementwise_cases.h"
#include "gradcheck.h"

using namespace pixgrad;
using Catch::Matchers::Contains;
using testing::check_second_order_gradients;
using testing::random_tensor;

namespace {

using Function = std::function<Tensor(const std::vector<Tensor>&)>;

Tensor leaf(const Shape& shape, uint64_t seed, double low = -1, double high = 1) {
  Tensor t = random_tensor(shape, seed, DType::Float64, low, high);
  t.set_requires_grad();
  return t;
}

}  // namespace

TEST_CASE("unary ops have second derivatives", "[autograd][double_backward]") {
  for (const auto& [name, op] : testing::unary_op_cases()) {
    INFO(name);
    // Kinks (relu, leaky_relu, abs at 0) are a measure-zero set; these
    // draws stay further than eps from them.
    const Tensor x = leaf({3, 5}, 11, -3, 3);
    check_second_order_gradients([op = op](const std::vector<Tensor>& in) { return op(in[0]); }, {x});
  }
  SECTION("square and sqrt") {
    check_second_order_gradients([](const std::vector<Tensor>& in) { return square(in[0]); }, {leaf({4, 3}, 12)});
    check_second_order_gradients([](const std::vector<Tensor>& in) { return sqrt(in[0]); },
                                 {leaf({4, 3}, 13, 0.5, 2)});
  }
}

TEST_CASE("a unary op composed with itself differentiates twice through both", "[autograd][double_backward]") {
  // tanh(tanh(x) * x): the first backward's recorded unary_grad nodes feed
  // each other, so their own backward (unary_double_backward) runs with two
  // live inputs.
  check_second_order_gradients([](const std::vector<Tensor>& in) { return tanh(mul(tanh(in[0]), in[0])); },
                               {leaf({2, 7}, 14, -2, 2)});
  check_second_order_gradients([](const std::vector<Tensor>& in) { return softplus(sigmoid(in[0]) * 3.0); },
                               {leaf({2, 7}, 15, -4, 4)});
}

TEST_CASE("elementwise arithmetic has second derivatives", "[autograd][double_backward]") {
  const Tensor a = leaf({2, 3, 4}, 21), b = leaf({2, 3, 4}, 22, 0.5, 2);
  const std::vector<std::pair<std::string, Function>> cases = {
      {"add", [](const std::vector<Tensor>& in) { return add(in[0], in[1]) * in[0]; }},
      {"sub", [](const std::vector<Tensor>& in) { return sub(in[0], in[1]) * in[1]; }},
      {"mul", [](const std::vector<Tensor>& in) { return mul(in[0], in[1]); }},
      {"div", [](const std::vector<Tensor>& in) { return div(in[0], in[1]); }},
      {"scalar ops", [](const std::vector<Tensor>& in) { return ((in[0] + 0.5) * 3.0 - 1.0) / 2.0 * in[1]; }},
      {"chain", [](const std::vector<Tensor>& in) { return testing::elementwise_chain(in[0], in[1]); }},
  };
  for (const auto& [name, f] : cases) {
    INFO(name);
    check_second_order_gradients(f, {a, b});
  }
}

TEST_CASE("sum and mean, whole and along a dimension, have second derivatives", "[autograd][double_backward]") {
  const Tensor x = leaf({3, 4, 2}, 31);
  check_second_order_gradients([](const std::vector<Tensor>& in) { return square(sum(in[0])); }, {x});
  check_second_order_gradients([](const std::vector<Tensor>& in) { return sqrt(square(mean(in[0])) + 1.0); }, {x});
  for (int64_t dim = 0; dim < 3; ++dim) {
    INFO("dim " << dim);
    check_second_order_gradients([dim](const std::vector<Tensor>& in) { return square(sum(in[0], dim)); }, {x});
    check_second_order_gradients([dim](const std::vector<Tensor>& in) { return tanh(mean(in[0], dim)); }, {x});
  }
  check_second_order_gradients(
      [](const std::vector<Tensor>& in) { return sqrt(sum(square(in[0].flatten(1)), 1)); }, {x});
}

TEST_CASE("dropout has second derivatives (its mask is a constant)", "[autograd][double_backward]") {
  check_second_order_gradients(
      [](const std::vector<Tensor>& in) {
        Generator generator(5);  // the same mask at every evaluation
        return square(dropout(in[0], 0.3, true, generator));
      },
      {leaf({4, 6}, 35)});
}

TEST_CASE("conv2d and conv_transpose2d have second derivatives", "[autograd][double_backward][conv]") {
  struct Case {
    const char* name;
    bool transposed;
    int64_t stride, padding;
    Shape input, weight;
  };
  const Case cases[] = {
      {"conv 3x3 s1 p1", false, 1, 1, {2, 3, 5, 6}, {4, 3, 3, 3}},
      {"conv 4x4 s2 p1", false, 2, 1, {1, 2, 7, 5}, {3, 2, 4, 4}},
      {"transposed 4x4 s2 p1", true, 2, 1, {2, 3, 3, 4}, {3, 2, 4, 4}},
      {"transposed 3x3 s1 p0", true, 1, 0, {1, 2, 4, 3}, {2, 3, 3, 3}},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    const Tensor x = leaf(c.input, 41), w = leaf(c.weight, 42), b = leaf({c.weight[c.transposed ? 1 : 0]}, 43);
    const ConvParams params{c.stride, c.padding};
    const bool transposed = c.transposed;
    const auto conv = [transposed, params](const Tensor& in, const Tensor& weight, const Tensor& bias) {
      return transposed ? conv_transpose2d(in, weight, bias, params) : conv2d(in, weight, bias, params);
    };
    // Bilinear: the x-w cross terms are the second derivative.
    check_second_order_gradients([conv](const std::vector<Tensor>& in) { return conv(in[0], in[1], in[2]); },
                                 {x, w, b});
    // Through a non-linearity, as in a discriminator.
    check_second_order_gradients(
        [conv](const std::vector<Tensor>& in) { return softplus(conv(in[0], in[1], in[2])); }, {x, w, b});
  }
}

TEST_CASE("a gradient penalty through a small discriminator matches finite differences",
          "[autograd][double_backward][conv]") {
  // D(x) = conv(leaky_relu(conv(x))), no norm; the penalty's parameter
  // gradient is a second derivative mixing input and weights.
  const Tensor x = leaf({2, 2, 6, 6}, 51), w1 = leaf({3, 2, 4, 4}, 52), b1 = leaf({3}, 53), w2 = leaf({1, 3, 3, 3}, 54);
  const auto penalty = [](const std::vector<Tensor>& in) {
    const AutoGradMode recording(true);  // the finite differences run without grad
    const Tensor& input = in[0];
    const Tensor scores = conv2d(leaky_relu(conv2d(input, in[1], in[2], {2, 1}), 0.2), in[3], Tensor(), {1, 1});
    const Tensor g = grad(sum(scores), {input}, Tensor(), GradOptions().create_graph(true))[0];
    const Tensor norms = sqrt(sum(square(g.flatten(1)), 1));
    return mean(square(norms - 1.0));
  };
  // The penalty's own gradient with respect to every input (x included),
  // against central differences: a third derivative of D.
  testing::check_gradients(penalty, {x, w1, b1, w2});
}

TEST_CASE("grad() returns gradients without touching .grad, and says what it cannot do", "[autograd][grad]") {
  const Tensor x = leaf({3}, 61), y = leaf({3}, 62), unused = leaf({2}, 63);
  const Tensor z = sum(mul(square(x), y));
  const std::vector<Tensor> g = grad(z, {x, y}, Tensor(), GradOptions().retain_graph(true));
  CHECK_FALSE(x.grad().defined());
  CHECK_FALSE(y.grad().defined());
  const std::vector<double> xs = x.to_double_vector(), ys = y.to_double_vector();
  const std::vector<double> gx = g[0].to_double_vector(), gy = g[1].to_double_vector();
  for (size_t i = 0; i < 3; ++i) {
    CHECK(gx[i] == Approx(2 * xs[i] * ys[i]).epsilon(1e-12));
    CHECK(gy[i] == Approx(xs[i] * xs[i]).epsilon(1e-12));
  }
  // An intermediate tensor as a target: d z / d square(x) = y.
  const Tensor x2 = square(x);
  const Tensor through = grad(sum(mul(x2, y)), {x2})[0];
  CHECK(testing::max_relative_error(through.to_double_vector(), ys) == 0);

  CHECK_THROWS_WITH(grad(z, {unused}, Tensor(), GradOptions().retain_graph(true)),
                    Contains("does not depend") || Contains("not used"));
  const std::vector<Tensor> allowed = grad(z, {x, unused}, Tensor(), GradOptions().allow_unused(true));
  CHECK(allowed[0].defined());
  CHECK_FALSE(allowed[1].defined());
  // Without create_graph the gradient is a constant.
  CHECK_FALSE(allowed[0].requires_grad());
}

TEST_CASE("ops without a differentiable backward refuse create_graph in one line naming the op",
          "[autograd][double_backward][errors]") {
  const Tensor x = leaf({2, 3, 4, 4}, 71);
  const auto second_order = [&](const Tensor& out) {
    const Tensor g = grad(sum(out), {x}, Tensor(), GradOptions().create_graph(true))[0];
    sum(g).backward();
  };
  const Tensor weight = Tensor::ones({3}, Device::cpu(), DType::Float64);
  const Tensor bias = Tensor::zeros({3}, Device::cpu(), DType::Float64);
  const Tensor running_mean = Tensor::zeros({3}, Device::cpu(), DType::Float64);
  const Tensor running_var = Tensor::ones({3}, Device::cpu(), DType::Float64);
  CHECK_THROWS_WITH(second_order(batch_norm(x, weight, bias, running_mean, running_var)),
                    Contains("batch_norm") && Contains("cannot be differentiated twice") && !Contains("\n"));
  CHECK_THROWS_WITH(second_order(l1_loss(x, Tensor::zeros_like(x))), Contains("l1_loss"));
  CHECK_THROWS_WITH(second_order(concat({x, x}, 1)), Contains("concat"));
  // Third order through a unary op: its double backward is first-order only.
  const Tensor g1 = grad(sum(tanh(x)), {x}, Tensor(), GradOptions().create_graph(true))[0];
  const Tensor g2 = grad(sum(g1), {x}, Tensor(), GradOptions().create_graph(true))[0];
  CHECK_THROWS_WITH(grad(sum(g2), {x}, Tensor(), GradOptions().create_graph(true)), Contains("tanh"));
}

TEST_CASE("backward with create_graph leaves differentiable gradients in .grad", "[autograd][double_backward]") {
  // The libtorch pattern: loss.backward({}, true, true), then a function of x.grad.
  const Tensor x = leaf({4}, 81);
  sum(mul(square(x), x)).backward(Tensor(), /*retain_graph=*/true, /*create_graph=*/true);  // grad = 3 x^2
  const Tensor first = x.grad();
  REQUIRE(first.requires_grad());
  const Tensor second = grad(sum(first), {x})[0];  // 6 x
  const std::vector<double> xs = x.to_double_vector(), s = second.to_double_vector();
  for (size_t i = 0; i < xs.size(); ++i) CHECK(s[i] == Approx(6 * xs[i]).epsilon(1e-12));
}

TEST_CASE("grad() of a tensor with respect to itself, and through graphs an earlier backward freed",
          "[autograd][grad]") {
  const Tensor x = leaf({2}, 91);
  const Tensor s = sum(mul(x, 3.0));
  CHECK(grad(s, {s}, Tensor(), GradOptions().retain_graph(true))[0].item() == 1);
  const Tensor y = mul(x, 2.0);
  CHECK(grad(y, {y}, Tensor::ones({2}, Device::cpu(), DType::Float64))[0].to_double_vector() ==
        std::vector<double>{1, 1});

  // y's producer is freed; a gradient with respect to y itself needs only
  // what came after it, one with respect to x needs the freed part.
  const Tensor squared = mul(x, x);
  sum(squared).backward();
  const Tensor z = sum(mul(squared, 3.0));
  CHECK(grad(z, {squared}, Tensor(), GradOptions().retain_graph(true))[0].to_double_vector() ==
        std::vector<double>{3, 3});
  CHECK_THROWS_WITH(grad(z, {x}, Tensor(), GradOptions().retain_graph(true)), Contains("already freed"));
  CHECK_THROWS_WITH(grad(z, {x}, Tensor(), GradOptions().allow_unused(true)), Contains("already freed"));
}

TEST_CASE("a later backward does not change a differentiable .grad in place", "[autograd][double_backward]") {
  Tensor x = Tensor::from_vector(std::vector<double>{1, 2}, {2});
  x.set_requires_grad();
  sum(mul(mul(x, x), x)).backward(Tensor(), /*retain_graph=*/false, /*create_graph=*/true);  // 3 x^2
  const Tensor penalty = sum(square(x.grad()));  // 9 sum x^4
  sum(x).backward();
  CHECK(grad(penalty, {x})[0].to_double_vector() == std::vector<double>{36, 288});
  x.zero_grad();  // drops the graph the create_graph backward left in .grad (see docs/core.md)
}
