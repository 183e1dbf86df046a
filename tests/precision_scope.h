// The process-wide convolution precision (kernels/conv_settings.h) set for a
// scope, and the one in use before put back.
#pragma once

#include <pixgrad/kernels/conv_settings.h>

namespace pixgrad::testing {

class PrecisionScope {
 public:
  explicit PrecisionScope(kernels::ConvPrecision precision) : saved_(kernels::conv_precision()) {
    kernels::set_conv_precision(precision);
  }
  ~PrecisionScope() { kernels::set_conv_precision(saved_); }
  PrecisionScope(const PrecisionScope&) = delete;
  PrecisionScope& operator=(const PrecisionScope&) = delete;

 private:
  kernels::ConvPrecision saved_;
};

}  // namespace pixgrad::testing
