// CPU convolution kernels on raw pointers: contiguous NCHW tensors, PyTorch
// weight layouts, the same signatures as the CUDA kernels
// (kernels/cuda/conv2d.h) after the device tag. float runs im2col + our
// SGEMM, multithreaded with OpenMP (call from one thread at a time per
// process: they share a per-thread scratch buffer); double runs the
// direct-loop definition (kernels/cpu/conv2d_reference.h), for gradient
// checks. Invalid geometry throws std::invalid_argument naming the op and the
// shapes.
//
// A transposed convolution needs no kernels of its own: it is the
// backward-data pass of its mirror convolution (core/ops/conv.cpp).
#pragma once

#include <pixgrad/kernels/conv_settings.h>
#include <pixgrad/kernels/device_tags.h>
#include <pixgrad/kernels/shapes.h>

namespace pixgrad::kernels::cpu {

// The float convolutions' arithmetic, from the process-wide setting
// (kernels/conv_settings.h): Bf16 when it asks for bf16 and this CPU has
// AVX-512 BF16 (gemm_bf16_supported()), Fp32 otherwise (every other setting,
// or bf16 on a CPU without the instructions). With Bf16 the matrix products
// round their operands to bf16 and sum in FP32 (kernels/cpu/gemm.h), and the
// 4x4 stride-1 layers take them instead of Winograd. Layers of at most 4
// output channels (the direct kernels) stay FP32, and so do the products
// gemm_bf16_rounds() declines: a side of at most 8, or a backward-data
// product (of W^T) over at most 64 output pixels.
ConvPrecision conv_precision_in_effect();

// What a pass of geometry g runs now (for benchmarks' records): algorithm
// "direct", "winograd", "im2col+gemm" (col stored, in bands for narrow
// layers) or "im2col-in-pack+gemm" (col made block by block in the product's
// packing), in math "fp32", "bf16", or "bf16+fp32" when a layer run in bands
// of output rows has a last band that gemm_bf16 declines.
struct ConvChoice {
  const char* algorithm;
  const char* math;
};
ConvChoice conv_choice(const Conv2dGeometry& g, ConvPass pass);

// input [batch, in_channels, in_height, in_width]
// weight [out_channels, in_channels, kernel_h, kernel_w]; bias [out_channels] or nullptr
// output [batch, out_channels, out_height, out_width]
// Outputs are overwritten; backward_weight sums over the batch, and writes
// grad_bias too when it is not null.
void conv2d_forward(Host, const Conv2dGeometry& g, const float* input, const float* weight, const float* bias,
                    float* output);
void conv2d_backward_data(Host, const Conv2dGeometry& g, const float* grad_output, const float* weight,
                          float* grad_input);
void conv2d_backward_weight(Host, const Conv2dGeometry& g, const float* input, const float* grad_output,
                            float* grad_weight, float* grad_bias);

void conv2d_forward(Host, const Conv2dGeometry& g, const double* input, const double* weight, const double* bias,
                    double* output);
void conv2d_backward_data(Host, const Conv2dGeometry& g, const double* grad_output, const double* weight,
                          double* grad_input);
void conv2d_backward_weight(Host, const Conv2dGeometry& g, const double* input, const double* grad_output,
                            double* grad_weight, double* grad_bias);

}  // namespace pixgrad::kernels::cpu
