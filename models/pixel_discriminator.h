// PixelDiscriminator: the PyTorch reference's 1x1 PixelGAN, the paper
// preset's other discriminator, on cat(condition, image): a 1x1 conv +
// LeakyReLU(0.2), a 1x1 conv-norm-LeakyReLU to 2 ndf, a 1x1 conv to one
// channel — one logit per pixel. The last two convs have a bias only with
// instance norm (the reference's use_bias).
#pragma once

#include <pixgrad/models/discriminator.h>

namespace pixgrad::models {

class PixelDiscriminator : public Discriminator {
 public:
  explicit PixelDiscriminator(const PatchGanOptions& options);
};

}  // namespace pixgrad::models
