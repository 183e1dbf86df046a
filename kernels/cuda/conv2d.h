// CUDA convolution kernels on raw device pointers: the same three passes and
// layouts as kernels/cpu/conv2d.h (contiguous NCHW float32, weight
// [out_channels, in_channels, kernel_h, kernel_w]), in three implementations:
//
//   Handwritten  implicit GEMM with shared-memory tiles (conv2d_implicit_gemm.cu)
//   Cudnn        cuDNN's legacy convolution API, FP32 FMA math (conv2d_cudnn.cu)
//   Cublas       explicit im2col/col2im + cuBLAS SGEMM (conv2d_cublas.cu)
//
// By default all three compute in plain FP32 (no TF32 tensor cores) and use
// no atomics: on a given GPU the handwritten and cuBLAS paths give
// bit-identical results run to run; cuDNN does within a process (it times its
// candidate algorithms once per geometry, so two processes may pick
// different ones). set_conv_precision selects TF32 tensor cores (the
// precision PyTorch's cuDNN convolutions use by default) or, for the
// handwritten kernels, 3xTF32 (tensor cores at near-FP32 accuracy).
//
// This header is plain C++ (no CUDA types) so that g++-compiled code can
// select the implementation. Everything here runs asynchronously on the
// current device's stream (pixgrad::cuda::current_stream()).
#pragma once

#include <string>

#include <pixgrad/kernels/channel_moments.h>
#include <pixgrad/kernels/conv_settings.h>
#include <pixgrad/kernels/device_tags.h>
#include <pixgrad/kernels/shapes.h>

namespace pixgrad::kernels::cuda {

// The settings are plain C++, in every build (kernels/conv_settings.h).
using ::pixgrad::kernels::allow_tf32;
using ::pixgrad::kernels::conv_impl;
using ::pixgrad::kernels::conv_precision;
using ::pixgrad::kernels::conv_precision_from_environment;
using ::pixgrad::kernels::ConvImpl;
using ::pixgrad::kernels::ConvPrecision;
using ::pixgrad::kernels::parse_conv_impl;
using ::pixgrad::kernels::parse_conv_precision;
using ::pixgrad::kernels::set_allow_tf32;
using ::pixgrad::kernels::set_conv_impl;
using ::pixgrad::kernels::set_conv_precision;
using ::pixgrad::kernels::to_string;

// Device pointers. Outputs are overwritten (grad_bias too); bias and
// grad_bias may be nullptr. backward_weight sums over the batch. Invalid
// geometry throws pixgrad::Error naming the op and the shapes.
//   input [batch, in_channels, in_height, in_width]
//   weight [out_channels, in_channels, kernel_h, kernel_w]; bias [out_channels]
//   output [batch, out_channels, out_height, out_width]
void conv2d_forward(Gpu, const Conv2dGeometry& g, const float* input, const float* weight, const float* bias,
                    float* output);
void conv2d_backward_data(Gpu, const Conv2dGeometry& g, const float* grad_output, const float* weight,
                          float* grad_input);
void conv2d_backward_weight(Gpu, const Conv2dGeometry& g, const float* input, const float* grad_output,
                            float* grad_weight, float* grad_bias);

using ::pixgrad::kernels::ConvPass;
const char* to_string(ConvPass pass);

// What an implementation runs for a pass of geometry g under the current
// settings, for benchmark records: the algorithm ("implicit_gemm" for the
// handwritten kernels, "im2col+sgemm" for cuBLAS, cuDNN's algorithm name once
// it has chosen one, else "") and the math ("fp32", "tf32", "3xtf32", "bf16", or for
// cuDNN its math type: "fma", "default", "tensor_op",
// "tensor_op_allow_conversion").
struct ConvChoice {
  std::string algorithm;
  std::string math;
};
ConvChoice conv_choice(ConvImpl impl, ConvPass pass, const Conv2dGeometry& g);

// The same with an explicit implementation (benchmarks, tests).
void conv2d_forward(Gpu, ConvImpl impl, const Conv2dGeometry& g, const float* input, const float* weight,
                    const float* bias, float* output);
void conv2d_backward_data(Gpu, ConvImpl impl, const Conv2dGeometry& g, const float* grad_output,
                          const float* weight, float* grad_input);
void conv2d_backward_weight(Gpu, ConvImpl impl, const Conv2dGeometry& g, const float* input,
                            const float* grad_output, float* grad_weight, float* grad_bias);

// The same, also writing the output's channel moments for a batch norm that
// reads it next (kernels/channel_moments.h): records [channels][R], R =
// conv_moment_records(gpu, pass, g), channels the output's. The handwritten
// kernels write them from each output tile once it is in memory, in the
// same launch; the other implementations write none (conv_moment_records
// is 0 while one of them is chosen), and then these return false (the
// output is written all the same), as they do for null `moments`.
int64_t conv_moment_records(Gpu, ConvPass pass, const Conv2dGeometry& g);
bool conv2d_forward_with_moments(Gpu, const Conv2dGeometry& g, const float* input, const float* weight,
                                 const float* bias, float* output, MomentRecord* moments);
bool conv2d_backward_data_with_moments(Gpu, const Conv2dGeometry& g, const float* grad_output, const float* weight,
                                       float* grad_input, MomentRecord* moments);

// The implementations behind the dispatcher. They expect a geometry that the
// dispatcher has validated, batch >= 1, and non-null input/output pointers.
namespace detail {

// The handwritten kernels run GEMMs of at most this many rows (output
// channels; input channels for backward data) on their FP32 tile at every
// precision: an m16 tensor-core instruction would be half padding.
constexpr int64_t kFp32OnlyRows = 8;

// `moments`, when not null: records [channels][moment_records(pass, g)].
void implicit_gemm_forward(const Conv2dGeometry& g, const float* input, const float* weight,
                           const float* bias, float* output, MomentRecord* moments = nullptr);
void implicit_gemm_backward_data(const Conv2dGeometry& g, const float* grad_output, const float* weight,
                                 float* grad_input, MomentRecord* moments = nullptr);
int64_t moment_records(ConvPass pass, const Conv2dGeometry& g);
void implicit_gemm_backward_weight(const Conv2dGeometry& g, const float* input, const float* grad_output,
                                   float* grad_weight, float* grad_bias);
// grad_bias[c] = sum over batch and pixels of grad_output[b][c], in a fixed
// order (deterministic); shared by the handwritten and cuBLAS paths.
void conv2d_bias_backward(const Conv2dGeometry& g, const float* grad_output, float* grad_bias);

void cudnn_forward(const Conv2dGeometry& g, const float* input, const float* weight, const float* bias,
                   float* output);
void cudnn_backward_data(const Conv2dGeometry& g, const float* grad_output, const float* weight,
                         float* grad_input);
void cudnn_backward_weight(const Conv2dGeometry& g, const float* input, const float* grad_output,
                           float* grad_weight, float* grad_bias);
// cuDNN's choice for a pass of g on the current device and TF32 setting ({"", ""} before its first call).
ConvChoice cudnn_choice(ConvPass pass, const Conv2dGeometry& g);

void cublas_forward(const Conv2dGeometry& g, const float* input, const float* weight, const float* bias,
                    float* output);
void cublas_backward_data(const Conv2dGeometry& g, const float* grad_output, const float* weight,
                          float* grad_input);
void cublas_backward_weight(const Conv2dGeometry& g, const float* input, const float* grad_output,
                            float* grad_weight, float* grad_bias);

}  // namespace detail

}  // namespace pixgrad::kernels::cuda
