// The process-wide convolution settings: which implementation the CUDA
// convolutions run and in what arithmetic. Plain C++, in every build: a build
// without CUDA reads, checks and records them the same way (the CPU
// convolutions are always our kernels, and compute in FP32 except under Bf16
// on a CPU with AVX-512 BF16: kernels/cpu/conv2d.h), so that a command line
// or an environment means the same everywhere.
//
// Each is an atomic (reading it costs nothing on the hot path), taken from the
// environment on first use unless a setter ran first (the apps' --conv-impl
// and --precision). A bad variable throws pixgrad::Error naming it, on every
// use, until a setter is used.
#pragma once

#include <string>
#include <vector>

namespace pixgrad::kernels {

// The CUDA convolutions' implementation:
//   Handwritten  implicit GEMM with shared-memory tiles (cuda/conv2d_implicit_gemm.cu)
//   Cudnn        cuDNN's legacy convolution API (cuda/conv2d_cudnn.cu)
//   Cublas       explicit im2col/col2im + cuBLAS SGEMM (cuda/conv2d_cublas.cu)
// From PIXGRAD_CONV_IMPL (handwritten | cudnn | cublas; unset or empty means
// handwritten).
enum class ConvImpl { Handwritten, Cudnn, Cublas };
ConvImpl conv_impl();
void set_conv_impl(ConvImpl impl);
// "handwritten" | "cudnn" | "cublas"; anything else throws pixgrad::Error
// "unknown 'x' (expected handwritten, cudnn or cublas)".
ConvImpl parse_conv_impl(const std::string& text);
const char* to_string(ConvImpl impl);
const std::vector<std::string>& conv_impl_names();

// The CUDA convolutions' arithmetic:
//   Fp32    FP32 FMAs on the CUDA cores (the default, and the reference)
//   Tf32    TF32 tensor cores: operands rounded to 10-bit mantissas, FP32
//           accumulation. cuDNN may choose tensor-op algorithms, cuBLAS runs
//           its TF32 GEMMs, the handwritten kernels use mma.sync.
//   Tf32x3  the handwritten kernels split each operand into two TF32 parts
//           and issue three tensor-core products (error near FP32's);
//           cuDNN and cuBLAS, which have no such mode, compute in FP32.
//   Bf16    the handwritten kernels round operands to bf16 (8 significant
//           bits) for bf16 tensor cores, FP32 accumulation, tensors FP32 in
//           memory; cuDNN and cuBLAS compute in FP32. The CPU convolutions
//           do the same with AVX-512 BF16 dot products where the CPU has
//           them (kernels/cpu/conv2d.h), FP32 where it does not.
// The handwritten kernels' layers of at most 8 channels stay FP32 (no
// tensor-core tile fits them: cuda::detail::kFp32OnlyRows). From
// PIXGRAD_PRECISION (fp32 | tf32 | 3xtf32 | bf16), or else PIXGRAD_TF32 ("1"
// is tf32, "0" fp32); unset means fp32. A pair that contradicts itself
// (PIXGRAD_TF32=1 beside a precision other than tf32, or PIXGRAD_TF32=0
// beside tf32) throws.
enum class ConvPrecision { Fp32, Tf32, Tf32x3, Bf16 };
ConvPrecision conv_precision();
void set_conv_precision(ConvPrecision precision);
// What the environment asks for, read afresh on every call (conv_precision
// reads it once).
ConvPrecision conv_precision_from_environment();
// "fp32" | "tf32" | "3xtf32" | "bf16"; anything else throws pixgrad::Error
// "unknown 'x' (expected fp32, tf32, 3xtf32 or bf16)".
ConvPrecision parse_conv_precision(const std::string& text);
const char* to_string(ConvPrecision precision);
const std::vector<std::string>& conv_precision_names();
// "a, b, c or d": a setting's names for a message.
std::string listed_names(const std::vector<std::string>& names);

// Whether a convolution asked for its output's channel moments
// (kernels/channel_moments.h) gives them, so that the batch norm after it
// takes its statistics from them instead of two passes over its input: on
// by default; off makes every batch norm find its own (to measure what they
// save, or to rule them out). From PIXGRAD_CONV_MOMENTS (on | off; unset
// or empty means on).
bool conv_moments();
void set_conv_moments(bool on);
// What the environment asks for, read afresh on every call (conv_moments
// reads it once).
bool conv_moments_from_environment();
// "on" | "off"; anything else throws pixgrad::Error "unknown 'x' (expected
// off or on)".
bool parse_conv_moments(const std::string& text);

// conv_precision() == Tf32: whether cuDNN and cuBLAS may use TF32.
bool allow_tf32();
// Tf32 when true, Fp32 when false.
void set_allow_tf32(bool allow);

}  // namespace pixgrad::kernels
