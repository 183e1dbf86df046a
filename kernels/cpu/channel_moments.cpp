#include <pixgrad/kernels/cpu/channel_moments.h>

#include <pixgrad/kernels/cpu/conv2d.h>

namespace pixgrad::kernels::cpu {

namespace {

int64_t records_per_plane(int64_t spatial) { return (spatial + kMomentValues - 1) / kMomentValues; }

}  // namespace

int64_t conv_moment_records(Host, ConvPass pass, const Conv2dGeometry& g) {
  const int64_t plane = pass == ConvPass::Forward ? g.out_height() * g.out_width() : g.in_height * g.in_width;
  return g.batch * records_per_plane(plane);
}

template <typename T>
void channel_moment_records(Host, const BatchNormShape& s, const T* x, MomentRecord* records) {
  const int64_t per_plane = records_per_plane(s.spatial), per_channel = s.batch * per_plane;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < s.batch; ++n) {
    for (int64_t c = 0; c < s.channels; ++c) {
      const T* plane = x + (n * s.channels + c) * s.spatial;
      MomentRecord* own = records + c * per_channel + n * per_plane;
      for (int64_t r = 0; r < per_plane; ++r) {
        const int64_t first = r * kMomentValues;
        const int count = static_cast<int>(s.spatial - first < kMomentValues ? s.spatial - first : kMomentValues);
        own[r] = moment_record(count, [&](int j) { return static_cast<double>(plane[first + j]); });
      }
    }
  }
}

template <typename T>
bool conv2d_forward_with_moments(Host, const Conv2dGeometry& g, const T* input, const T* weight, const T* bias,
                                 T* output, MomentRecord* moments) {
  conv2d_forward(host, g, input, weight, bias, output);
  channel_moment_records(host, {g.batch, g.out_channels, g.out_height() * g.out_width()}, output, moments);
  return true;
}

template <typename T>
bool conv2d_backward_data_with_moments(Host, const Conv2dGeometry& g, const T* grad_output, const T* weight,
                                       T* grad_input, MomentRecord* moments) {
  conv2d_backward_data(host, g, grad_output, weight, grad_input);
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
