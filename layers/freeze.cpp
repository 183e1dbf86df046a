#include <pixgrad/layers/freeze.h>

namespace pixgrad::nn {

FreezeGuard::FreezeGuard(const Module& module) {
  for (Tensor& parameter : module.parameters()) {
    saved_.emplace_back(parameter, parameter.requires_grad());
    parameter.set_requires_grad(false);
  }
}

// In reverse, so that a parameter registered twice (shared) ends with its first, original flag.
FreezeGuard::~FreezeGuard() {
  for (auto entry = saved_.rbegin(); entry != saved_.rend(); ++entry) entry->first.set_requires_grad(entry->second);
}

}  // namespace pixgrad::nn
