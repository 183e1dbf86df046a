#include "models/norm_layer.h"

#include "layers/normalization.h"

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

}  // namespace pixgrad::models
