// The normalisation layer a preset asks for, as a module (or nullptr for none).
#pragma once

#include <memory>

#include <pixgrad/layers/module.h>
#include <pixgrad/models/presets.h>

namespace pixgrad::models {

struct NormSettings {
  NormKind kind = NormKind::Batch;
  double eps = 1e-5;
  double momentum = 0.1;  // batch norm only
};

std::shared_ptr<nn::Module> make_norm(const NormSettings& settings, int64_t channels);
// norm->forward(input), or `input` when there is no norm (nullptr).
Tensor apply_norm(const std::shared_ptr<nn::Module>& norm, const Tensor& input);

// The PyTorch reference's init_weights: every BatchNorm2d weight ~ Normal(1,
// 0.02) (the bias stays 0), drawn from the default generator in
// registration order.
void reinitialise_batch_norm_weights(nn::Module& model);

}  // namespace pixgrad::models
