#include <pixgrad/models/pix2pix_options.h>

namespace pixgrad::models {

Pix2PixOptions Pix2PixOptions::for_preset(Preset preset, int64_t input_channels, int64_t output_channels) {
  Pix2PixOptions options;
  options.preset = preset;
  options.generator = UnetOptions::for_preset(preset, input_channels, output_channels);
  options.discriminator = PatchGanOptions::for_preset(preset, input_channels, output_channels);
  options.adam = optim::AdamOptions(2e-4).beta1(0.5).beta2(0.999).eps(1e-8);
  if (preset == Preset::Chainer) {
    // The original trainer's WeightDecay hook, and Chainer's Adam.
    options.adam.weight_decay(1e-5).placement(optim::EpsilonPlacement::Chainer);
  }
  return options;
}

}  // namespace pixgrad::models
