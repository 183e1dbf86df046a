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

#include <pixgrad/kernels/device_tags.h>
#include <pixgrad/kernels/shapes.h>

namespace pixgrad::kernels::cuda {

enum class ConvImpl { Handwritten, Cudnn, Cublas };

// The process-wide implementation used by the impl-less overloads below. On
// first use it is read from the environment variable PIXGRAD_CONV_IMPL
// (handwritten | cudnn | cublas; unset or empty means handwritten; anything
// else throws pixgrad::Error). set_conv_impl overrides it.
ConvImpl conv_impl();
void set_conv_impl(ConvImpl impl);
// "handwritten" | "cudnn" | "cublas"; anything else throws pixgrad::Error
// "conv impl: unknown 'x' (expected handwritten, cudnn or cublas)".
ConvImpl parse_conv_impl(const std::string& text);
const char* to_string(ConvImpl impl);

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

// The convolutions' arithmetic, process-wide:
//   Fp32    FP32 FMAs on the CUDA cores (the default, and the reference)
//   Tf32    TF32 tensor cores: operands rounded to 10-bit mantissas, FP32
//           accumulation. cuDNN may choose tensor-op algorithms, cuBLAS runs
//           its TF32 GEMMs, the handwritten kernels use mma.sync.
//   Tf32x3  the handwritten kernels split each operand into two TF32 parts
//           and issue three tensor-core products (error near FP32's);
//           cuDNN and cuBLAS, which have no such mode, compute in FP32.
//   Bf16    the handwritten kernels round operands to bf16 (8 significant
//           bits) for bf16 tensor cores, FP32 accumulation, tensors FP32 in
//           memory; cuDNN and cuBLAS compute in FP32.
// The handwritten kernels' layers of at most 8 channels stay FP32 (no
// tensor-core tile fits them: detail::kFp32OnlyRows). On first use the precision is read from
// PIXGRAD_PRECISION (fp32 | tf32 | 3xtf32 | bf16), or else PIXGRAD_TF32 ("1" is
// tf32, "0" fp32); unset means fp32 and anything else throws, as does a
// pair that contradicts itself (PIXGRAD_TF32=1 beside a precision other than
// tf32, or PIXGRAD_TF32=0 beside tf32). set_conv_precision overrides it (the
// apps' --precision).
enum class ConvPrecision { Fp32, Tf32, Tf32x3, Bf16 };
ConvPrecision conv_precision();
// What the environment asks for, read afresh on every call (conv_precision
// reads it once).
ConvPrecision conv_precision_from_environment();
void set_conv_precision(ConvPrecision precision);
// "fp32" | "tf32" | "3xtf32" | "bf16"; anything else throws pixgrad::Error
// "precision: unknown 'x' (expected fp32, tf32, 3xtf32 or bf16)".
ConvPrecision parse_conv_precision(const std::string& text);
const char* to_string(ConvPrecision precision);
// conv_precision() == Tf32: whether cuDNN and cuBLAS may use TF32.
bool allow_tf32();
// Tf32 when true, Fp32 when false.
void set_allow_tf32(bool allow);

// The three passes of a convolution.
enum class ConvPass { Forward, BackwardData, BackwardWeight };
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

// The implementations behind the dispatcher. They expect a geometry that the
// dispatcher has validated, batch >= 1, and non-null input/output pointers.
namespace detail {

// The handwritten kernels run GEMMs of at most this many rows (output
// channels; input channels for backward data) on their FP32 tile at every
// precision: an m16 tensor-core instruction would be half padding.
constexpr int64_t kFp32OnlyRows = 8;

void implicit_gemm_forward(const Conv2dGeometry& g, const float* input, const float* weight,
                           const float* bias, float* output);
void implicit_gemm_backward_data(const Conv2dGeometry& g, const float* grad_output, const float* weight,
                                 float* grad_input);
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
