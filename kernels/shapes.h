// The problem sizes the CPU and CUDA kernels share.
#pragma once

#include <cstdint>

namespace pixgrad::kernels {

// A 2-d convolution over NCHW tensors with a square stride and padding:
// input [batch, in_channels, in_height, in_width],
// weight [out_channels, in_channels, kernel_h, kernel_w],
// output [batch, out_channels, out_height(), out_width()].
struct Conv2dGeometry {
  int64_t batch, in_channels, in_height, in_width;
  int64_t out_channels, kernel_h, kernel_w;
  int64_t stride, padding;
  int64_t out_height() const { return (in_height + 2 * padding - kernel_h) / stride + 1; }
  int64_t out_width() const { return (in_width + 2 * padding - kernel_w) / stride + 1; }
};

// The three passes of a convolution.
enum class ConvPass { Forward, BackwardData, BackwardWeight };

// Batch normalisation over [N, C, S] (S = H*W), per channel.
struct BatchNormShape {
  int64_t batch, channels, spatial;
};

}  // namespace pixgrad::kernels
