#include <pixgrad/models/nlayer_discriminator.h>

#include <algorithm>

#include <pixgrad/core/error.h>

namespace pixgrad::models {

NLayerDiscriminator::NLayerDiscriminator(const PatchGanOptions& options)
    : Discriminator("NLayerDiscriminator", options) {
  PIXGRAD_CHECK(options.n_layers >= 1 && options.n_layers <= 8, "NLayerDiscriminator: n_layers must be in 1..8, got ",
                options.n_layers);
  const int64_t ndf = options.ndf;
  const bool bias = options.norm.kind == NormKind::Instance;
  add_layer(ConvBlockOptions(
      nn::Conv2dOptions(options.condition_channels + options.image_channels, ndf, 4).stride(2).padding(1)));
  int64_t width = ndf;
  for (int n = 1; n <= options.n_layers; ++n) {
    const int64_t next = ndf * std::min<int64_t>(int64_t{1} << n, 8);
    const int64_t stride = n == options.n_layers ? 1 : 2;
    add_layer(ConvBlockOptions(nn::Conv2dOptions(width, next, 4).stride(stride).padding(1).bias(bias)).norm(true));
    width = next;
  }
  add_layer(ConvBlockOptions(nn::Conv2dOptions(width, 1, 4).padding(1)).leaky_relu(false));
  reinitialise_batch_norm_weights(*this);
}

}  // namespace pixgrad::models
