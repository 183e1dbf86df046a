#include <pixgrad/models/penalties.h>

#include <pixgrad/core/autograd.h>
#include <pixgrad/core/error.h>
#include <pixgrad/core/ops.h>

namespace pixgrad::models {

namespace {

// d sum(critic(x)) / dx at the given inputs, as a differentiable [N, rest]
// tensor. Recording is switched on here: the penalty is a gradient, so it
// needs the critic's graph even where the caller evaluates without grad.
Tensor flat_input_gradient(const Critic& critic, const Tensor& inputs) {
  const AutoGradMode recording(true);
  Tensor x = inputs.detach();
  x.set_requires_grad();
  const Tensor scores = critic(x);
  PIXGRAD_CHECK(scores.defined() && scores.requires_grad(),
                "gradient penalty: the critic's output does not depend on its input");
  const Tensor g = grad(sum(scores), {x}, Tensor(), GradOptions().create_graph(true))[0];
  return g.flatten(1);
}

}  // namespace

Tensor interpolate(const Tensor& real, const Tensor& fake, const std::vector<double>& alpha) {
  PIXGRAD_CHECK(real.defined() && fake.defined(), "interpolate: real and fake must be defined tensors");
  PIXGRAD_CHECK(real.shape() == fake.shape() && real.dim() >= 1,
                "interpolate: real ", shape_str(real.shape()), " and fake ", shape_str(fake.shape()),
                " must have one shape");
  PIXGRAD_CHECK(real.size(0) > 0 && real.numel() > 0, "interpolate: the batch ", shape_str(real.shape()),
                " is empty");
  PIXGRAD_CHECK(static_cast<int64_t>(alpha.size()) == real.size(0), "interpolate: ", alpha.size(),
                " mixing weights for ", real.size(0), " samples");
  // One weight per sample, spread over the sample's elements.
  const int64_t per_sample = real.numel() / real.size(0);
  std::vector<double> weights(static_cast<size_t>(real.numel()));
  for (size_t i = 0; i < weights.size(); ++i) weights[i] = alpha[i / static_cast<size_t>(per_sample)];
  const Tensor a = Tensor::from_vector(weights, real.shape()).to(real.dtype()).to(real.device());
  NoGradGuard no_grad;
  return add(mul(real.detach(), a), mul(fake.detach(), add(neg(a), 1.0)));
}

Tensor random_interpolation(const Tensor& real, const Tensor& fake, Generator& generator) {
  PIXGRAD_CHECK(real.defined() && real.dim() >= 1, "random_interpolation: real must be a batch");
  const std::vector<double> alpha =
      Tensor::uniform({real.size(0)}, 0, 1, generator, Device::cpu(), DType::Float64).to_double_vector();
  return interpolate(real, fake, alpha);
}

Tensor gradient_penalty(const Critic& critic, const Tensor& points, double weight) {
  const Tensor g = flat_input_gradient(critic, points);
  const Tensor norms = sqrt(add(sum(square(g), 1), 1e-12));
  return mul(mean(square(sub(norms, 1.0))), weight);
}

Tensor r1_penalty(const Critic& critic, const Tensor& real, double gamma) {
  const Tensor g = flat_input_gradient(critic, real);
  return mul(mean(sum(square(g), 1)), gamma / 2);
}

}  // namespace pixgrad::models
