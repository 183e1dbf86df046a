#include <pixgrad/models/unet.h>

#include <pixgrad/core/ops.h>

namespace pixgrad::models {

UnetGenerator::UnetGenerator(const UnetOptions& options) : UnetBase("UnetGenerator", options, 5) {
  const int n = options.num_downs;
  const bool bias = options.norm.kind == NormKind::Instance;
  for (int i = 0; i < n; ++i) {
    const std::string name = "down" + std::to_string(i);
    const int64_t in = i == 0 ? options.input_channels : options.level_channels(i - 1);
    const int64_t out = options.level_channels(i);
    down_convs_.push_back(
        register_module(name, nn::make<nn::Conv2d>(nn::Conv2dOptions(in, out, 4).stride(2).padding(1).bias(bias))));
    const bool has_norm = i > 0 && i < n - 1;
    down_norms_.push_back(has_norm ? add_norm(name + "_norm", options.level_channels(i)) : nullptr);
  }
  for (int i = 0; i < n; ++i) {
    const std::string name = "up" + std::to_string(i);
    const int64_t in = i == n - 1 ? options.level_channels(i) : 2 * options.level_channels(i);
    const int64_t out = i == 0 ? options.output_channels : options.level_channels(i - 1);
    up_convs_.push_back(register_module(
        name, nn::make<nn::ConvTranspose2d>(
                  nn::ConvTranspose2dOptions(in, out, 4).stride(2).padding(1).bias(i == 0 || bias))));
    up_norms_.push_back(i > 0 ? add_norm(name + "_norm", out) : nullptr);
    up_dropout_.push_back(options.use_dropout && i >= 4 && i <= n - 2);
  }
  reinitialise_batch_norm_weights(*this);
}

Tensor UnetGenerator::forward(const Tensor& input) {
  check_input(input);
  const int n = options().num_downs;
  std::vector<Tensor> skips;  // skips[i - 1]: the activated input of level i
  Tensor h = down_convs_[0]->forward(input);
  for (int i = 1; i < n; ++i) {
    const Tensor activated = leaky_relu(h, 0.2);
    skips.push_back(activated);
    h = apply_norm(down_norms_[i], down_convs_[i]->forward(activated));
  }
  for (int i = n - 1; i >= 0; --i) {
    h = apply_norm(up_norms_[i], up_convs_[i]->forward(relu(h)));
    if (up_dropout_[i]) h = dropout(h, options().dropout, is_training());
    h = i == 0 ? tanh(h) : concat({skips[i - 1], h}, 1);
  }
  return h;
}

}  // namespace pixgrad::models
