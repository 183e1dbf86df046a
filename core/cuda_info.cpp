// The answer for builds without the CUDA backend; core/cuda_backend.cu gives
// the real one otherwise.
#include "core/cuda_info.h"

#ifndef PIXGRAD_WITH_CUDA
namespace pixgrad {

bool built_with_cuda() { return false; }

int cuda_device_count(std::string* reason) {
  if (reason) *reason = "pixgrad was built without CUDA";
  return 0;
}

void synchronize(const Device&) {}

}  // namespace pixgrad
#endif
