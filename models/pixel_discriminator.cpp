#include <pixgrad/models/pixel_discriminator.h>

namespace pixgrad::models {

PixelDiscriminator::PixelDiscriminator(const PatchGanOptions& options)
    : Discriminator("PixelDiscriminator", options) {
  const int64_t ndf = options.ndf;
  const bool bias = options.norm.kind == NormKind::Instance;
  add_layer(ConvBlockOptions(nn::Conv2dOptions(options.condition_channels + options.image_channels, ndf, 1)));
  add_layer(ConvBlockOptions(nn::Conv2dOptions(ndf, 2 * ndf, 1).bias(bias)).norm(true));
  add_layer(ConvBlockOptions(nn::Conv2dOptions(2 * ndf, 1, 1).bias(bias)).leaky_relu(false));
  reinitialise_batch_norm_weights(*this);
}

}  // namespace pixgrad::models
