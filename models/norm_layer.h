// The normalisation layer a preset asks for, as a module (or nullptr for none).
#pragma once

#include <memory>
#include <vector>

#include <pixgrad/core/ops.h>
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
// The same followed by `after` (dropout, then an activation), fused into a
// batch or instance norm's pass; without a norm, as separate ops, dropout
// in training only. A batch norm that fuses writes its result into `out`
// when given (batch_norm in core/ops.h); use the returned tensor.
// `training` decides the dropout; a norm in another mode than the caller's
// runs it as separate ops.
// `input_moments`: the moments of `input` that the convolution producing it
// gave (through moments_for), which a batch norm uses for its statistics.
Tensor apply_norm(const std::shared_ptr<nn::Module>& norm, const Tensor& input, const BatchNormEpilogue& after,
                  bool training, const Tensor& out = Tensor(), const Tensor& input_moments = Tensor());
// Where a convolution should put its output's channel moments for
// apply_norm(norm, ..., training, ...) to read next: &moments when that
// norm would use them (a batch norm with batch statistics), else nullptr.
Tensor* moments_for(const std::shared_ptr<nn::Module>& norm, bool training, Tensor& moments);
// Whether apply_norm(norm, ..., training, out) now writes its result into
// `out` (for an epilogue batch_norm fuses: not a leaky ReLU whose slope is
// negative).
bool writes_into_out(const std::shared_ptr<nn::Module>& norm, bool training);
// The two slots of a skip connection's concat along channels, each shaped
// like `like`, when both norms that fill them write into out (concat_slots in
// core/ops.h: at batch 1 the concat is then a view); two undefined tensors
// otherwise, so each norm makes its own output.
std::vector<Tensor> skip_slots(const Tensor& like, const std::shared_ptr<nn::Module>& first_norm,
                               const std::shared_ptr<nn::Module>& second_norm, bool training);

// The PyTorch reference's init_weights: every BatchNorm2d weight ~ Normal(1,
// 0.02) (the bias stays 0), drawn from the default generator in
// registration order.
void reinitialise_batch_norm_weights(nn::Module& model);

}  // namespace pixgrad::models
