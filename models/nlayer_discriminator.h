// NLayerDiscriminator: the PyTorch reference's PatchGAN, the paper preset's
// discriminator, on cat(condition, image).
//
// A 4x4 stride-2 conv + LeakyReLU(0.2); n_layers - 1 more stride-2
// conv-norm-LeakyReLU with the width doubling up to 8 ndf; one stride-1
// conv-norm-LeakyReLU; a stride-1 conv to one channel. n_layers = 3 is the
// 70x70 PatchGAN. Convs between the first and the last have a bias only with
// instance norm (the reference's use_bias).
#pragma once

#include <pixgrad/models/discriminator.h>

namespace pixgrad::models {

class NLayerDiscriminator : public Discriminator {
 public:
  // n_layers in 1..8.
  explicit NLayerDiscriminator(const PatchGanOptions& options);
};

}  // namespace pixgrad::models
