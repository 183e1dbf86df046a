// Direct stride-1 convolutions for layers with very few output channels.
//
// The last layer of a PatchGAN (512 -> 1 channel) and the chainer preset's
// output conv (128 -> 3 channels) turn im2col + SGEMM into a product with 1
// to 3 rows: the col matrix (up to 29 MiB) is written and read again for a
// handful of multiply-adds per entry, and such a layer reached 4-15 % of the
// FMA ceiling. Here every pass runs without col:
//   forward          y[co][oy][ox] = sum over ci, ky, kx of w[co][ci][ky][kx] x[ci][oy+ky-p][ox+kx-p]
//   backward data    the same correlation over dy, with the weight flipped and
//                    its channel axes swapped, and padding kernel-1-p
//   backward weight  dw[co][ci][ky][kx] = sum over images, oy, ox of dy[co][oy][ox] x[ci][oy+ky-p][ox+kx-p]
// Each pass copies the rows it reads into a zero-bordered slab (so the inner
// loops have no edge cases) and keeps a tile of outputs in AVX2 registers.
// Sums run in a different order from the SGEMM path: results agree to float
// rounding, not to the bit.
#pragma once

#include <pixgrad/kernels/shapes.h>

namespace pixgrad::kernels::cpu {

// True for a float convolution these kernels take: stride 1, a square 3x3 or
// 4x4 kernel, padding below the kernel size, at most kDirectMaxOutChannels
// output channels, on a CPU with AVX2 and FMA.
constexpr int64_t kDirectMaxOutChannels = 4;
bool direct_conv_applies(const Conv2dGeometry& g);

// Same layouts and contracts as conv2d.h (outputs overwritten; the weight
// gradient summed over the batch), without bias. Call only when
// direct_conv_applies(g).
void direct_conv_forward(const Conv2dGeometry& g, const float* input, const float* weight, float* output);
void direct_conv_backward_data(const Conv2dGeometry& g, const float* grad_output, const float* weight,
                               float* grad_input);
void direct_conv_backward_weight(const Conv2dGeometry& g, const float* input, const float* grad_output,
                                 float* grad_weight);

}  // namespace pixgrad::kernels::cpu
