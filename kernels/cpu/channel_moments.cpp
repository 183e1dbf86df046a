#include <pixgrad/kernels/cpu/channel_moments.h>

#include <pixgrad/kernels/cpu/conv2d.h>

namespace pixgrad::kernels::cpu {

int64_t conv_moment_records(Host, ConvPass pass, const Conv2dGeometry& g) {
  const int64_t plane = pass == ConvPass::Forward ? g.out_height() * g.out_width() : g.in_height * g.in_width;
  return records_for(g.batch * plane);
}

// Channel c's values in order, image after image; record r holds values
// [32r, 32r + 32), as the CUDA forward kernel's records hold its columns.
template <typename T>
void channel_moment_records(Host, const BatchNormShape& s, const T* x, MomentRecord* records) {
  const int64_t values = s.batch * s.spatial, per_channel = records_for(values);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < s.channels; ++c) {
    for (int64_t r = 0; r < per_channel; ++r) {
      const int64_t first = r * kMomentValues;
      const int count = static_cast<int>(values - first < kMomentValues ? values - first : kMomentValues);
      const int64_t n = first / s.spatial;  // the record's first value: image n, pixel i
      int64_t i = first % s.spatial;
      const T* plane = x + (n * s.channels + c) * s.spatial;
      if (i + count <= s.spatial) {  // within one plane: read in place
        const T* run = plane + i;
        records[c * per_channel + r] = moment_record(count, [&](int j) { return static_cast<double>(run[j]); });
        continue;
      }
      double gathered[kMomentValues];
      for (int j = 0; j < count; ++j) {
        gathered[j] = static_cast<double>(plane[i]);
        if (++i == s.spatial && j + 1 < count) {  // on to the next image's plane
          i = 0;
          plane += s.channels * s.spatial;
        }
      }
      records[c * per_channel + r] = moment_record(count, [&](int j) { return gathered[j]; });
    }
  }
}

template <typename T>
bool conv2d_forward_with_moments(Host, const Conv2dGeometry& g, const T* input, const T* weight, const T* bias,
                                 T* output, MomentRecord* moments) {
  conv2d_forward(host, g, input, weight, bias, output);
  if (moments == nullptr) return false;
  channel_moment_records(host, {g.batch, g.out_channels, g.out_height() * g.out_width()}, output, moments);
  return true;
}

template <typename T>
bool conv2d_backward_data_with_moments(Host, const Conv2dGeometry& g, const T* grad_output, const T* weight,
                                       T* grad_input, MomentRecord* moments) {
  conv2d_backward_data(host, g, grad_output, weight, grad_input);
  if (moments == nullptr) return false;
  channel_moment_records(host, {g.batch, g.in_channels, g.in_height * g.in_width}, grad_input, moments);
  return true;
}

#define PIXGRAD_INSTANTIATE_MOMENTS(T)                                                                              \
  template void channel_moment_records<T>(Host, const BatchNormShape&, const T*, MomentRecord*);                 \
  template bool conv2d_forward_with_moments<T>(Host, const Conv2dGeometry&, const T*, const T*, const T*, T*,   \
                                               MomentRecord*);                                                  \
  template bool conv2d_backward_data_with_moments<T>(Host, const Conv2dGeometry&, const T*, const T*, T*,       \
                                                     MomentRecord*);
PIXGRAD_INSTANTIATE_MOMENTS(float)
PIXGRAD_INSTANTIATE_MOMENTS(double)
#undef PIXGRAD_INSTANTIATE_MOMENTS

}  // namespace pixgrad::kernels::cpu
