// A custom op with its own forward and backward: Swish, y = x * sigmoid(x)
// (Ramachandran et al. 2017). The forward loops over the elements itself;
// record() attaches the backward, which autograd calls with dL/dy.
//
// Then two checks a new op deserves — its gradient against central
// differences, and that a small model learns with it — before using it for real.
#include <cmath>
#include <cstdio>

#include <pixgrad/pixgrad.h>

using namespace pixgrad;

// y = x * s, s = sigmoid(x); dy/dx = s * (1 + x * (1 - s)).
Tensor swish(const Tensor& x) {
  PIXGRAD_CHECK(x.is_cpu() && x.dtype() == DType::Float64, "swish: this example's loop wants float64 on the CPU");
  Tensor y = Tensor::empty_like(x), slope = Tensor::empty_like(x);
  const double* in = x.data<double>();
  double* out = y.data<double>();
  double* derivative = slope.data<double>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double s = 1 / (1 + std::exp(-in[i]));
    out[i] = in[i] * s;
    derivative[i] = s * (1 + in[i] * (1 - s));
  }
  // The backward multiplies by the saved slope with a differentiable op, so
  // that gradients flow; saved tensors come back detached in context.saved().
  return record(
      "swish", y, {x},
      [](const Tensor& grad_y, const BackwardContext& context) {
        return std::vector<Tensor>{mul(grad_y, context.saved(0))};
      },
      {slope}, DoubleBackward::Unsupported);  // the slope is a constant here: no second derivative
}

int main() {
  Generator generator(7);
  // 1. The gradient of sum(swish(x) * r) against central differences.
  Tensor x = Tensor::uniform({64}, -4, 4, generator, Device::cpu(), DType::Float64);
  x.set_requires_grad();
  const Tensor r = Tensor::uniform({64}, -1, 1, generator, Device::cpu(), DType::Float64);
  sum(mul(swish(x), r)).backward();
  const std::vector<double> analytic = x.grad().to_double_vector();
  double worst = 0;
  {
    NoGradGuard no_grad;
    double* values = x.data<double>();
    for (int64_t i = 0; i < x.numel(); ++i) {
      const double saved = values[i], eps = 1e-6;
      values[i] = saved + eps;
      const double plus = sum(mul(swish(x), r)).item();
      values[i] = saved - eps;
      const double minus = sum(mul(swish(x), r)).item();
      values[i] = saved;
      worst = std::max(worst, std::abs((plus - minus) / (2 * eps) - analytic[i]));
    }
  }
  std::printf("swish gradient: largest difference from finite differences %.2e\n", worst);
  if (worst > 1e-7) return 1;

  // 2. Learn y = swish(a * x) by gradient descent on a, from a = 0.5 to 2.
  Tensor a = Tensor::full({1}, 0.5, Device::cpu(), DType::Float64);
  a.set_requires_grad();
  const Tensor inputs = Tensor::uniform({256}, -3, 3, generator, Device::cpu(), DType::Float64);
  const Tensor targets = swish(mul(inputs, 2.0));
  optim::SGD sgd({a}, optim::SGDOptions(0.05));
  double loss_value = 0;
  for (int step = 0; step < 200; ++step) {
    const Tensor scaled = mul(inputs, Tensor::full({256}, 1.0, Device::cpu(), DType::Float64) * a.item());
    (void)scaled;
    sgd.zero_grad();
    const Tensor loss = mean(square(sub(swish(mul(inputs, a.item())), targets)));
    loss_value = loss.item();
    loss.backward();
    sgd.step();
  }
  std::printf("fitted a = %.4f (target 2), loss %.2e\n", a.item(), loss_value);
  return std::abs(a.item() - 2) < 1e-3 ? 0 : 1;
}
