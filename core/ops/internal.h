// Differentiable building blocks the ops' backward functions share, and
// what the ops share about channel moments; not part of the public op set
// (core/ops.h).
#pragma once

#include <cstdint>

#include <pixgrad/core/tensor.h>
#include <pixgrad/kernels/channel_moments.h>

namespace pixgrad::detail {

// Views x as [groups, batch, channels, spatial] and sums over batch and
// spatial: out[g, c] = sum over b, s of x[g, b, c, s], shaped `out_shape`
// (groups * channels elements). A conv bias gradient is {1, N, C, H*W}; a
// sum over one dimension [outer, extent, inner] is {outer, extent, inner, 1}.
struct ChannelGroups {
  int64_t groups, batch, channels, spatial;
};
Tensor channel_sum(const Tensor& x, const ChannelGroups& layout, const Shape& out_shape);
// The adjoint of channel_sum: out[g, b, c, s] = v[g, c], shaped `out_shape`.
Tensor channel_broadcast(const Tensor& v, const ChannelGroups& layout, const Shape& out_shape);

// A channel-moments tensor ([C, R, 3] float64, kernels/channel_moments.h)
// as its records; nullptr for an undefined tensor.
inline kernels::MomentRecord* moment_records_of(const Tensor& moments) {
  return moments.defined() ? reinterpret_cast<kernels::MomentRecord*>(moments.data<double>()) : nullptr;
}

}  // namespace pixgrad::detail
