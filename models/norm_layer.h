// The normalisation layer a preset asks for, as a module (or nullptr for none).
#pragma once

#include <memory>

#include "layers/module.h"
#include "models/presets.h"

namespace pixgrad::models {

struct NormSettings {
  NormKind kind = NormKind::Batch;
  double eps = 1e-5;
  double momentum = 0.1;  // batch norm only
};

std::shared_ptr<nn::Module> make_norm(const NormSettings& settings, int64_t channels);

}  // namespace pixgrad::models
