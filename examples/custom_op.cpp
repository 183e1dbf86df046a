// A custom op with its own forward and backward: Swish, y = x * sigmoid(x)
// (Ramachandran et al. 2017). The forward is our own loop; record_differentiable() attaches
// the backward, written with differentiable ops so that Swish also supports
// double backward (create_graph, as a gradient penalty needs). Then the checks
// a new op deserves: first and second derivatives against central differences
// in float64, and a small network with it that learns. Exits 1 if one fails.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>

#include <pixgrad/pixgrad.h>

using namespace pixgrad;

template <typename T>
void swish_loop(const T* x, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] / (1 + std::exp(-x[i]));
}

Tensor swish(const Tensor& x) {
  PIXGRAD_CHECK(x.is_cpu(), "swish: this example's forward runs on the CPU, not on ", x.device().str());
  Tensor y = Tensor::empty_like(x);
  if (x.dtype() == DType::Float64) swish_loop(x.data<double>(), y.data<double>(), x.numel());
  else swish_loop(x.data<float>(), y.data<float>(), x.numel());
  // dy/dx = s (1 + x - x s) with s = sigmoid(x), computed by ops on
  // context.input(0) rather than by a loop: under create_graph they are
  // recorded too, so the gradient has a gradient (record_differentiable says so).
  auto backward = [](const Tensor& grad_y, const BackwardContext& context) {
    const Tensor& input = context.input(0);
    const Tensor s = sigmoid(input);
    return std::vector<Tensor>{grad_y * s * (input - input * s + 1.0)};
  };
  return record_differentiable("swish", y, {x}, backward);
}

// Swish as a module, so that it slots into nn::Sequential like nn::ReLU.
class Swish : public nn::Module {
 public:
  Swish() : nn::Module("Swish") {}
  Tensor forward(const Tensor& input) override { return swish(input); }
};

// The largest difference between `analytic`, the gradient of the scalar f
// with respect to x, and central differences of f, element by element.
double worst_difference(const std::function<double()>& f, const Tensor& x, const Tensor& analytic) {
  const std::vector<double> expected = analytic.to_double_vector();
  double* values = x.data<double>();
  double worst = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double saved = values[i], eps = 1e-6;
    values[i] = saved + eps;
    const double plus = f();
    values[i] = saved - eps;
    const double minus = f();
    values[i] = saved;
    worst = std::max(worst, std::abs((plus - minus) / (2 * eps) - expected[i]));
  }
  return worst;
}

// Autograd's first and second derivatives of Swish against central
// differences in float64: f(x) = sum(swish(x) * r), whose gradient is
// swish'(x) * r, and h(x) = sum(df/dx * q), whose gradient needs swish''.
bool derivatives_match() {
  Generator generator(7);
  Tensor x = Tensor::uniform({64}, -4, 4, generator, Device::cpu(), DType::Float64);
  x.set_requires_grad();
  const Tensor r = Tensor::uniform({64}, -1, 1, generator, Device::cpu(), DType::Float64);
  const Tensor q = Tensor::uniform({64}, -1, 1, generator, Device::cpu(), DType::Float64);
  auto f = [&] { return sum(swish(x) * r); };
  auto h = [&] { return sum(grad(f(), {x}, Tensor(), GradOptions().create_graph(true))[0] * q); };
  const double first = worst_difference([&] { return f().item(); }, x, grad(f(), {x})[0]);
  const double second = worst_difference([&] { return h().item(); }, x, grad(h(), {x})[0]);
  std::printf("swish vs central differences: first derivative off by %.1e, second by %.1e\n", first, second);
  const bool match = first < 1e-6 && second < 1e-6;
  if (!match) std::fprintf(stderr, "custom_op: swish's backward disagrees with central differences\n");
  return match;
}

// A per-pixel network (1x1 convolutions) with Swish between its layers
// learns y = x^2 on [-2, 2]; true if the loss falls a hundredfold.
bool network_learns(int iterations) {
  manual_seed(1);  // the layers' initial weights
  auto pointwise = [](int64_t in, int64_t out) { return nn::make<nn::Conv2d>(nn::Conv2dOptions(in, out, 1)); };
  nn::Sequential net(pointwise(1, 32), nn::make<Swish>(), pointwise(32, 32), nn::make<Swish>(), pointwise(32, 1));
  Generator generator(8);
  const Tensor inputs = Tensor::uniform({1, 1, 16, 16}, -2, 2, generator);
  const Tensor targets = square(inputs);
  optim::Adam adam(net.parameters(), optim::AdamOptions(1e-2));
  double first_loss = 0, loss_value = 0;
  for (int step = 1; step <= iterations; ++step) {
    adam.zero_grad();
    const Tensor loss = mean(square(net.forward(inputs) - targets));
    loss.backward();
    adam.step();
    loss_value = loss.item();
    if (step == 1) first_loss = loss_value;
    if (step == 1 || step % 50 == 0 || step == iterations) std::printf("step %4d: loss %.5f\n", step, loss_value);
  }
  const bool learned = loss_value < 0.01 * first_loss;
  if (!learned) std::fprintf(stderr, "custom_op: the loss fell only from %.5f to %.5f\n", first_loss, loss_value);
  return learned;
}

int main(int argc, char** argv) {
  CLI::App app{"custom_op: Swish with a hand-written forward and backward, checked, then used in a network"};
  int iterations = 300;
  app.add_option("--iterations", iterations, "Adam steps")->capture_default_str()->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);

  try {
    return derivatives_match() && network_learns(iterations) ? 0 : 1;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "custom_op: %s\n", error.what());
    return 1;
  }
}
