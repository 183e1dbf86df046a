// Winograd F(2x2, 4x4) for wide stride-1 4x4 convolutions.
//
// The PatchGAN's 256 -> 512 channel stride-1 layer does more than a third of
// the paper preset's convolution FLOPs (it runs 3 forward and 3 backward-data
// passes per iteration). Winograd's minimal filtering computes each 2x2 block
// of outputs from a 5x5 block of inputs with 25 multiplications per channel
// pair instead of 64: the inputs and weights are transformed (B^T d B,
// G g G^T), multiplied point by point as 25 independent SGEMMs over the
// channels, and the sums transformed back (A^T m A). The evaluation points
// are 0, 1, -1, -2 and infinity; B^T has small integer entries, so the input
// transform is exact and the rounding sits in the weight transform.
//
// Accuracy: about 20 times the rounding error of a direct float sum (measured
// on 256-channel sums: largest error 1.6e-4 against 1e-5 for the direct sum
// of terms in [-1, 1]), and about 40 times below TF32's. Set the environment
// variable PIXGRAD_CPU_WINOGRAD=0 to run these layers through im2col + SGEMM
// instead.
//
// A backward-data pass of a stride-1 convolution is itself a stride-1
// correlation (weight turned half a circle, channel axes swapped, padding
// 3 - p), so it runs the same way.
#pragma once

#include <pixgrad/kernels/shapes.h>

namespace pixgrad::kernels::cpu {

// Float convolutions taken: stride 1, 4x4 kernel, padding at most 3, at
// least 64 input and 64 output channels, an output at least 8x8, on a CPU
// with AVX2 and FMA, unless PIXGRAD_CPU_WINOGRAD=0.
bool winograd_conv_applies(const Conv2dGeometry& g);

// Same layouts and contracts as conv2d.h, without bias. Call only when
// winograd_conv_applies(g).
void winograd_conv_forward(const Conv2dGeometry& g, const float* input, const float* weight, float* output);
void winograd_conv_backward_data(const Conv2dGeometry& g, const float* grad_output, const float* weight,
                                 float* grad_input);

}  // namespace pixgrad::kernels::cpu
