#include <pixgrad/models/patchgan.h>

#include <algorithm>
#include <string>

#include <pixgrad/core/error.h>
#include <pixgrad/core/ops.h>

namespace pixgrad::models {

PatchGanOptions PatchGanOptions::for_preset(Preset preset, int64_t condition_channels, int64_t image_channels) {
  PatchGanOptions options;
  options.preset = preset;
  options.condition_channels = condition_channels;
  options.image_channels = image_channels;
  if (preset == Preset::Chainer) options.norm.eps = 2e-5;
  return options;
}

void PatchGanDiscriminator::add_layer(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding,
                                      bool bias, bool norm, bool activation) {
  const std::string name = "layer" + std::to_string(layers_.size());
  Layer layer;
  layer.conv = register_module(
      name, std::make_shared<nn::Conv2d>(nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding).bias(bias)));
  if (norm) layer.norm = make_norm(options_.norm, out);
  if (layer.norm) register_module(name + "_norm", layer.norm);
  layer.activation = activation;
  layers_.push_back(layer);
}

PatchGanDiscriminator::PatchGanDiscriminator(const PatchGanOptions& options)
    : Module("PatchGanDiscriminator"), options_(options) {
  const int64_t ndf = options.ndf;
  PIXGRAD_CHECK(ndf > 0 && options.condition_channels > 0 && options.image_channels > 0,
                "PatchGanDiscriminator: channel counts must be positive (ndf ", ndf, ", condition ",
                options.condition_channels, ", image ", options.image_channels, ")");
  // The reference gives convs a bias only when the norm is instance norm.
  const bool bias = options.norm.kind == NormKind::Instance;
  if (options.preset == Preset::Paper && options.pixel) {
    const int64_t in = options.condition_channels + options.image_channels;
    add_layer(in, ndf, 1, 1, 0, true, false, true);
    add_layer(ndf, 2 * ndf, 1, 1, 0, bias, true, true);
    add_layer(2 * ndf, 1, 1, 1, 0, bias, false, false);
  } else if (options.preset == Preset::Paper) {
    PIXGRAD_CHECK(options.n_layers >= 1 && options.n_layers <= 8, "PatchGanDiscriminator: n_layers must be in 1..8, got ",
                  options.n_layers);
    add_layer(options.condition_channels + options.image_channels, ndf, 4, 2, 1, true, false, true);
    int64_t width = ndf;
    for (int n = 1; n <= options.n_layers; ++n) {
      const int64_t next = ndf * std::min<int64_t>(int64_t{1} << n, 8);
      const bool last = n == options.n_layers;  // the stride-1 layer
      add_layer(width, next, 4, last ? 1 : 2, 1, bias, true, true);
      width = next;
    }
    add_layer(width, 1, 4, 1, 1, true, false, false);
  } else {
    PIXGRAD_CHECK(ndf % 2 == 0, "PatchGanDiscriminator: the chainer preset needs an even ndf, got ", ndf);
    auto stream = [&](const std::string& name, int64_t in) {
      Layer layer;
      layer.conv = register_module(name, std::make_shared<nn::Conv2d>(
                                             nn::Conv2dOptions(in, ndf / 2, 4).stride(2).padding(1).bias(true)));
      return layer;
    };
    condition_stream_ = stream("condition_stream", options.condition_channels);
    image_stream_ = stream("image_stream", options.image_channels);
    add_layer(ndf, 2 * ndf, 4, 2, 1, true, true, true);
    add_layer(2 * ndf, 4 * ndf, 4, 2, 1, true, true, true);
    add_layer(4 * ndf, 8 * ndf, 4, 2, 1, true, true, true);
    add_layer(8 * ndf, 1, 3, 1, 1, true, false, false);
  }
  if (options.preset == Preset::Paper) reinitialise_batch_norm_weights(*this);
}

Tensor PatchGanDiscriminator::run(const Layer& layer, const Tensor& input) {
  Tensor h = layer.conv->forward(input);
  if (layer.norm) h = layer.norm->forward(h);
  return layer.activation ? leaky_relu(h, 0.2) : h;
}

Tensor PatchGanDiscriminator::forward(const Tensor& condition, const Tensor& image) {
  PIXGRAD_CHECK(condition.dim() == 4 && image.dim() == 4 && condition.size(0) == image.size(0) &&
                    condition.size(2) == image.size(2) && condition.size(3) == image.size(3),
                "PatchGanDiscriminator: condition ", shape_str(condition.shape()), " and image ",
                shape_str(image.shape()), " must be [N, C, H, W] with the same N, H, W");
  PIXGRAD_CHECK(condition.size(1) == options_.condition_channels && image.size(1) == options_.image_channels,
                "PatchGanDiscriminator: expected ", options_.condition_channels, " condition and ",
                options_.image_channels, " image channels, got ", shape_str(condition.shape()), " and ",
                shape_str(image.shape()));
  Tensor h = options_.preset == Preset::Chainer
                 ? concat({run(condition_stream_, condition), run(image_stream_, image)}, 1)
                 : concat({condition, image}, 1);
  for (const Layer& layer : layers_) h = run(layer, h);
  return h;
}

}  // namespace pixgrad::models
