#include <pixgrad/models/chainer_unet.h>

#include <pixgrad/core/ops.h>

namespace pixgrad::models {

ChainerUnet::ChainerUnet(const UnetOptions& options) : UnetBase("ChainerUnet", options, 1) {
  const int n = options.num_downs;
  const int64_t width = options.level_channels(0);
  stem_ = register_module("stem", nn::make<nn::Conv2d>(nn::Conv2dOptions(options.input_channels, width, 3).padding(1)));
  for (int i = 1; i <= n; ++i) {
    const std::string name = "down" + std::to_string(i);
    const int64_t in = options.level_channels(i - 1), out = options.level_channels(i);
    down_convs_.push_back(
        register_module(name, nn::make<nn::Conv2d>(nn::Conv2dOptions(in, out, 4).stride(2).padding(1))));
    down_norms_.push_back(add_norm(name + "_norm", out));
  }
  for (int j = 0; j < n; ++j) {
    const std::string name = "up" + std::to_string(j);
    const int64_t in = j == 0 ? options.level_channels(n) : 2 * options.level_channels(n - j);
    const int64_t out = options.level_channels(n - 1 - j);
    up_convs_.push_back(register_module(
        name, nn::make<nn::ConvTranspose2d>(nn::ConvTranspose2dOptions(in, out, 4).stride(2).padding(1))));
    up_norms_.push_back(add_norm(name + "_norm", out));
    up_dropout_.push_back(options.use_dropout && j < 3);
  }
  head_ = register_module(
      "head", nn::make<nn::Conv2d>(nn::Conv2dOptions(2 * width, options.output_channels, 3).padding(1)));
}

Tensor ChainerUnet::forward(const Tensor& input) {
  check_input(input);
  const int n = options().num_downs;
  // Each norm does the dropout and activation after it in its own pass.
  // The output of up step n - f - 1 and features f (1 <= f < n) are joined
  // in that order: written into the two slots of one buffer (concat_slots,
  // core/ops.h), a batch of one joins them without a copy.
  const BatchNormEpilogue leaky = BatchNormEpilogue::leaky_relu(0.2);
  std::vector<Tensor> features{leaky_relu(stem_->forward(input), 0.2)};
  std::vector<Tensor> decoder_slots(static_cast<size_t>(n));  // where up step j's norm may write
  for (int f = 1; f <= n; ++f) {
    Tensor moments;
    const Tensor convolved =
        down_convs_[f - 1]->forward(features.back(), moments_for(down_norms_[f - 1], is_training(), moments));
    // The innermost features (f = n) join nothing.
    std::vector<Tensor> slots(2);
    if (f < n) {
      slots = skip_slots(convolved, up_norms_[n - f - 1], down_norms_[f - 1], is_training());
      decoder_slots[static_cast<size_t>(n - f - 1)] = slots[0];
    }
    features.push_back(apply_norm(down_norms_[f - 1], convolved, leaky, is_training(), slots[1], moments));
  }
  Tensor h = features.back();
  for (int j = 0; j < n; ++j) {
    if (j > 0) h = concat({h, features[n - j]}, 1);
    const BatchNormEpilogue after = BatchNormEpilogue::relu(up_dropout_[j] ? options().dropout : 0.0);
    Tensor moments;
    const Tensor upsampled = up_convs_[j]->forward(h, moments_for(up_norms_[j], is_training(), moments));
    h = apply_norm(up_norms_[j], upsampled, after, is_training(), decoder_slots[static_cast<size_t>(j)], moments);
  }
  return head_->forward(concat({h, features[0]}, 1));
}

}  // namespace pixgrad::models
