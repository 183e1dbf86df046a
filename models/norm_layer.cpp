#include <pixgrad/models/norm_layer.h>

#include <pixgrad/layers/init.h>
#include <pixgrad/layers/normalization.h>

namespace pixgrad::models {

std::shared_ptr<nn::Module> make_norm(const NormSettings& settings, int64_t channels) {
  switch (settings.kind) {
    case NormKind::Batch:
      return std::make_shared<nn::BatchNorm2d>(
          nn::BatchNorm2dOptions(channels).eps(settings.eps).momentum(settings.momentum));
    case NormKind::Instance:
      // As in the PyTorch reference: no affine parameters, no running statistics.
      return std::make_shared<nn::InstanceNorm2d>(nn::InstanceNorm2dOptions(channels).eps(settings.eps));
    case NormKind::None: return nullptr;
  }
  return nullptr;
}

Tensor apply_norm(const std::shared_ptr<nn::Module>& norm, const Tensor& input) {
  return norm ? norm->forward(input) : input;
}

Tensor apply_norm(const std::shared_ptr<nn::Module>& norm, const Tensor& input, const BatchNormEpilogue& after,
                  bool training, const Tensor& out, const Tensor& input_moments) {
  if (norm && norm->is_training() == training) {
    if (const auto batch = std::dynamic_pointer_cast<nn::BatchNorm2d>(norm))
      return batch->forward(input, after, out, input_moments);
    if (const auto instance = std::dynamic_pointer_cast<nn::InstanceNorm2d>(norm))
      return instance->forward(input, after);
  }
  return apply_epilogue(apply_norm(norm, input), after, training);
}

namespace {

// `norm` as the batch norm that apply_norm(norm, ..., training) calls with
// its extra arguments, or nullptr (another kind of norm, or another mode).
std::shared_ptr<nn::BatchNorm2d> batch_norm_in_mode(const std::shared_ptr<nn::Module>& norm, bool training) {
  auto batch = std::dynamic_pointer_cast<nn::BatchNorm2d>(norm);
  return batch && batch->is_training() == training ? batch : nullptr;
}

}  // namespace

Tensor* moments_for(const std::shared_ptr<nn::Module>& norm, bool training, Tensor& moments) {
  const auto batch = batch_norm_in_mode(norm, training);
  return batch && batch->uses_moments() ? &moments : nullptr;
}

bool writes_into_out(const std::shared_ptr<nn::Module>& norm, bool training) {
  const auto batch = batch_norm_in_mode(norm, training);
  return batch && batch->fuses();
}

std::vector<Tensor> skip_slots(const Tensor& like, const std::shared_ptr<nn::Module>& first_norm,
                               const std::shared_ptr<nn::Module>& second_norm, bool training) {
  if (!writes_into_out(first_norm, training) || !writes_into_out(second_norm, training)) return {Tensor(), Tensor()};
  return concat_slots({like.shape(), like.shape()}, 1, like.device(), like.dtype());
}

void reinitialise_batch_norm_weights(nn::Module& model) {
  for (const auto& [name, child] : model.named_children()) {
    if (auto norm = std::dynamic_pointer_cast<nn::BatchNorm2d>(child)) {
      if (norm->weight.defined()) nn::init::normal_(norm->weight, 1.0, 0.02);
    } else {
      reinitialise_batch_norm_weights(*child);
    }
  }
}

}  // namespace pixgrad::models
