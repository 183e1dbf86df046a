#include <pixgrad/models/networks.h>

#include <pixgrad/core/error.h>
#include <pixgrad/models/chainer_discriminator.h>
#include <pixgrad/models/chainer_unet.h>
#include <pixgrad/models/nlayer_discriminator.h>
#include <pixgrad/models/pixel_discriminator.h>
#include <pixgrad/models/unet.h>

namespace pixgrad::models {

std::shared_ptr<UnetBase> make_generator(Preset preset, const UnetOptions& options) {
  if (preset == Preset::Chainer) return nn::make<ChainerUnet>(options);
  return nn::make<UnetGenerator>(options);
}

std::shared_ptr<Discriminator> make_discriminator(Preset preset, const PatchGanOptions& options) {
  if (preset == Preset::Chainer) {
    PIXGRAD_CHECK(!options.pixel, "the chainer preset has no pixel discriminator");
    return nn::make<ChainerDiscriminator>(options);
  }
  if (options.pixel) return nn::make<PixelDiscriminator>(options);
  return nn::make<NLayerDiscriminator>(options);
}

}  // namespace pixgrad::models
