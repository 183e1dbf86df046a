#pragma once

#include <cstdint>

// CPU convolution kernels on raw pointers: contiguous NCHW float32 tensors,
// PyTorch weight layouts. Multithreaded with OpenMP; call from one thread at
// a time per process (they share a per-thread scratch buffer). Invalid
// geometry throws std::invalid_argument naming the op and the shapes.
namespace pixgrad::kernels::cpu {

struct Conv2dGeometry {
  int64_t batch, in_channels, in_height, in_width;
  int64_t out_channels, kernel_h, kernel_w;
  int64_t stride, padding;
  int64_t out_height() const { return (in_height + 2 * padding - kernel_h) / stride + 1; }
  int64_t out_width() const { return (in_width + 2 * padding - kernel_w) / stride + 1; }
};

// input [batch, in_channels, in_height, in_width]
// weight [out_channels, in_channels, kernel_h, kernel_w]; bias [out_channels] or nullptr
// output [batch, out_channels, out_height, out_width]
void conv2d_forward(const Conv2dGeometry& g, const float* input, const float* weight,
                    const float* bias, float* output);  // overwrites output
void conv2d_backward_data(const Conv2dGeometry& g, const float* grad_output, const float* weight,
                          float* grad_input);  // overwrites grad_input
// Overwrites grad_weight (and grad_bias if non-null), summing over the batch.
void conv2d_backward_weight(const Conv2dGeometry& g, const float* input,
                            const float* grad_output, float* grad_weight, float* grad_bias);

// Transposed convolution (PyTorch ConvTranspose2d without output_padding or
// dilation): the adjoint of the conv2d that maps [out_channels, out_height,
// out_width] back to [in_channels, in_height, in_width] with the same weight.
struct ConvTranspose2dGeometry {
  int64_t batch, in_channels, in_height, in_width;
  int64_t out_channels, kernel_h, kernel_w;
  int64_t stride, padding;
  int64_t out_height() const { return (in_height - 1) * stride - 2 * padding + kernel_h; }
  int64_t out_width() const { return (in_width - 1) * stride - 2 * padding + kernel_w; }
};

// input [batch, in_channels, in_height, in_width]
// weight [in_channels, out_channels, kernel_h, kernel_w]; bias [out_channels] or nullptr
// output [batch, out_channels, out_height, out_width]
void conv_transpose2d_forward(const ConvTranspose2dGeometry& g, const float* input,
                              const float* weight, const float* bias,
                              float* output);  // overwrites output
void conv_transpose2d_backward_data(const ConvTranspose2dGeometry& g, const float* grad_output,
                                    const float* weight,
                                    float* grad_input);  // overwrites grad_input
// Overwrites grad_weight (and grad_bias if non-null), summing over the batch.
void conv_transpose2d_backward_weight(const ConvTranspose2dGeometry& g, const float* input,
                                      const float* grad_output, float* grad_weight,
                                      float* grad_bias);

}  // namespace pixgrad::kernels::cpu
