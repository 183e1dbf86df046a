// The networks of each preset, picked here once (as the PyTorch reference's
// define_G / define_D):
//   paper   — UnetGenerator; NLayerDiscriminator, or PixelDiscriminator
//             with options.pixel
//   chainer — ChainerUnet; ChainerDiscriminator
#pragma once

#include <memory>

#include <pixgrad/models/discriminator.h>
#include <pixgrad/models/presets.h>
#include <pixgrad/models/unet_base.h>

namespace pixgrad::models {

// G maps [N, input_channels, H, W] to [N, output_channels, H, W]; D gives
// logits for a (condition, image) pair.
std::shared_ptr<UnetBase> make_generator(Preset preset, const UnetOptions& options);
std::shared_ptr<Discriminator> make_discriminator(Preset preset, const PatchGanOptions& options);

}  // namespace pixgrad::models
