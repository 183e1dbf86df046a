// Channel moments on the CPU (kernels/channel_moments.h): the convolution
// passes that a batch norm may read next, also writing their output's
// records, so that the batch norm (kernels/cpu/batch_norm.h) needs one pass
// over the tensor instead of three. The CPU convolution writes its whole
// output first and then the records, in one more pass over it; the CUDA
// kernels (kernels/cuda/conv2d.h) write them from each output tile.
#pragma once

#include <cstdint>

#include <pixgrad/kernels/channel_moments.h>
#include <pixgrad/kernels/device_tags.h>
#include <pixgrad/kernels/shapes.h>

namespace pixgrad::kernels::cpu {

// Records per channel of the output of `pass` (Forward or BackwardData):
// one per run of kMomentValues of the channel's values, image after image.
int64_t conv_moment_records(Host, ConvPass pass, const Conv2dGeometry& g);

// The records of x [N, C, S], records [C][ceil(N * S / kMomentValues)].
template <typename T>
void channel_moment_records(Host, const BatchNormShape& s, const T* x, MomentRecord* records);

// conv2d_forward / conv2d_backward_data (kernels/cpu/conv2d.h), then the
// output's records when `moments` is not null. Return whether they wrote
// records (the CPU always does, given somewhere to put them).
template <typename T>
bool conv2d_forward_with_moments(Host, const Conv2dGeometry& g, const T* input, const T* weight, const T* bias,
                                 T* output, MomentRecord* moments);
template <typename T>
bool conv2d_backward_data_with_moments(Host, const Conv2dGeometry& g, const T* grad_output, const T* weight,
                                       T* grad_input, MomentRecord* moments);

}  // namespace pixgrad::kernels::cpu
