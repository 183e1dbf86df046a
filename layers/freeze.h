// FreezeGuard: a module's parameters frozen for a scope, e.g. the
// discriminator while the generator's loss backpropagates through it.
#pragma once

#include <utility>
#include <vector>

#include <pixgrad/core/tensor.h>
#include <pixgrad/layers/module.h>

namespace pixgrad::nn {

// Sets requires_grad false on every parameter of `module` (its descendants
// included) for the guard's lifetime, so that ops recorded meanwhile give
// them no gradient; then gives each parameter back the flag it had before,
// also when an exception unwinds the scope.
class FreezeGuard {
 public:
  explicit FreezeGuard(const Module& module);
  ~FreezeGuard();
  FreezeGuard(const FreezeGuard&) = delete;
  FreezeGuard& operator=(const FreezeGuard&) = delete;

 private:
  std::vector<std::pair<Tensor, bool>> saved_;  // each parameter and its flag before
};

}  // namespace pixgrad::nn
