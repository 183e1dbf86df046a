// Building blocks for GANs, beyond pix2pix: the adversarial objectives, and
// (from layers/freeze.h) nn::FreezeGuard, which keeps D's parameters out of
// the graph while G's loss backpropagates through D.
//
// The objectives take D's logits on real and on generated samples (any
// shape; every loss is a mean over all logits):
//
//   objective  D on real            D on fake           G
//   Vanilla    mean(softplus(-r))   mean(softplus(f))   mean(softplus(-f))
//   LSGAN      mean((r - 1)^2)      mean(f^2)           mean((f - 1)^2)
//   Hinge      mean(relu(1 - r))    mean(relu(1 + f))   -mean(f)
//   WGANGP     -mean(r)             mean(f)             -mean(f)
//
// Vanilla is binary cross-entropy with logits against "real" (1) and "fake"
// (0), in the non-saturating form for G that pix2pix uses; LSGAN is the mean
// squared error to 1 and 0 (Mao et al. 2017); Hinge is the SNGAN / BigGAN
// form; WGANGP is the critic's Wasserstein estimate (Gulrajani et al. 2017).
// The gradient penalty of WGAN-GP is a separate term, added to D's loss by
// the caller; the PyTorch reference's pix2pix does not add it, nor does ours.
#pragma once

#include <string>

#include <pixgrad/core/tensor.h>
#include <pixgrad/layers/freeze.h>

namespace pixgrad::models {

enum class GanObjective { Vanilla, LSGAN, Hinge, WGANGP };

// "vanilla" | "lsgan" | "hinge" | "wgangp" (the PyTorch reference's names).
GanObjective parse_gan_objective(const std::string& text);
std::string to_string(GanObjective objective);

// D's loss in its two parts; D minimises real + fake.
struct DiscriminatorLoss {
  Tensor real;  // on D(real samples)
  Tensor fake;  // on D(generated samples)
  Tensor total() const;
};

DiscriminatorLoss discriminator_loss(GanObjective objective, const Tensor& real_logits, const Tensor& fake_logits);
// What G minimises, from D's logits on its samples.
Tensor generator_loss(GanObjective objective, const Tensor& fake_logits);

}  // namespace pixgrad::models
