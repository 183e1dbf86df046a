// Whether CUDA devices can be used by this process. Any error from the
// runtime (no driver, driver too old, no device) counts as "no GPU".
#pragma once

#include <string>

#include "core/device.h"

namespace pixgrad {

// True when pixgrad was configured with the CUDA backend.
bool built_with_cuda();
// Number of usable CUDA devices (0 on any error); `reason` gets why there are none.
int cuda_device_count(std::string* reason = nullptr);
// Waits until `device` has finished all queued work (nothing to wait for on the CPU).
void synchronize(const Device& device);

}  // namespace pixgrad
