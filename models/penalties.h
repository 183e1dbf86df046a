// Gradient penalties for GAN critics. Each differentiates the critic's output
// with respect to its input (create_graph), so that its own backward reaches
// the critic's parameters through second derivatives. The critic must be
// built from ops with a differentiable backward (docs/core.md lists them):
// convolutions, activations, arithmetic, sums; not batch norm.
#pragma once

#include <functional>
#include <vector>

#include <pixgrad/core/generator.h>
#include <pixgrad/core/tensor.h>

namespace pixgrad::models {

// What a penalty differentiates: scores (any shape) from a batch of inputs.
// A module fits as [&](const Tensor& x) { return critic->forward(x); }.
using Critic = std::function<Tensor(const Tensor&)>;

// alpha_i * real_i + (1 - alpha_i) * fake_i for every sample i (alpha has one
// value per sample), cut from the graph: the points WGAN-GP penalises.
Tensor interpolate(const Tensor& real, const Tensor& fake, const std::vector<double>& alpha);
// The same with alpha_i ~ U(0, 1).
Tensor random_interpolation(const Tensor& real, const Tensor& fake, Generator& generator = default_generator());

// WGAN-GP (Gulrajani et al. 2017): weight * mean_i (|g_i|_2 - 1)^2, where
// g = d sum(critic(points)) / d points; 10 is the paper's weight. The norm
// is sqrt(|g_i|^2 + 1e-12), so that a zero gradient has a finite derivative.
Tensor gradient_penalty(const Critic& critic, const Tensor& points, double weight = 10);

// R1 (Mescheder et al. 2018): gamma / 2 * mean_i |g_i|^2, where
// g = d sum(critic(real)) / d real, on real samples only.
Tensor r1_penalty(const Critic& critic, const Tensor& real, double gamma = 10);

}  // namespace pixgrad::models
