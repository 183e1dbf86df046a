#include <pixgrad/models/chainer_discriminator.h>

#include <pixgrad/core/error.h>
#include <pixgrad/core/ops.h>

namespace pixgrad::models {

ChainerDiscriminator::ChainerDiscriminator(const PatchGanOptions& options)
    : Discriminator("ChainerDiscriminator", options) {
  const int64_t ndf = options.ndf;
  PIXGRAD_CHECK(ndf % 2 == 0, "ChainerDiscriminator: needs an even ndf, got ", ndf);
  const auto stream = [&](int64_t channels) {
    return ConvBlockOptions(nn::Conv2dOptions(channels, ndf / 2, 4).stride(2).padding(1));
  };
  condition_stream_ = add_block("condition_stream", stream(options.condition_channels));
  image_stream_ = add_block("image_stream", stream(options.image_channels));
  for (const int64_t width : {ndf, 2 * ndf, 4 * ndf})
    add_layer(ConvBlockOptions(nn::Conv2dOptions(width, 2 * width, 4).stride(2).padding(1)).norm(true));
  add_layer(ConvBlockOptions(nn::Conv2dOptions(8 * ndf, 1, 3).padding(1)).leaky_relu(false));
}

Tensor ChainerDiscriminator::forward(const Tensor& condition, const Tensor& image) {
  check_inputs(condition, image);
  return forward_layers(concat({condition_stream_.forward(condition), image_stream_.forward(image)}, 1));
}

}  // namespace pixgrad::models
