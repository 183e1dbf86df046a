#include <pixgrad/kernels/cpu/conv2d_reference.h>

#include <algorithm>

namespace pixgrad::kernels::cpu {

namespace {

// Visits every (input element, weight element, output element) triple that
// the convolution multiplies together, with their flat indices.
template <typename Visit>
void for_each_tap(const Conv2dGeometry& g, Visit visit) {
  const int64_t out_h = g.out_height(), out_w = g.out_width();
  for (int64_t n = 0; n < g.batch; ++n)
    for (int64_t co = 0; co < g.out_channels; ++co)
      for (int64_t oh = 0; oh < out_h; ++oh)
        for (int64_t ow = 0; ow < out_w; ++ow) {
          const int64_t out_index = ((n * g.out_channels + co) * out_h + oh) * out_w + ow;
          for (int64_t ci = 0; ci < g.in_channels; ++ci)
            for (int64_t kh = 0; kh < g.kernel_h; ++kh) {
              const int64_t ih = oh * g.stride - g.padding + kh;
              if (ih < 0 || ih >= g.in_height) continue;
              for (int64_t kw = 0; kw < g.kernel_w; ++kw) {
                const int64_t iw = ow * g.stride - g.padding + kw;
                if (iw < 0 || iw >= g.in_width) continue;
                const int64_t in_index = ((n * g.in_channels + ci) * g.in_height + ih) * g.in_width + iw;
                const int64_t weight_index = ((co * g.in_channels + ci) * g.kernel_h + kh) * g.kernel_w + kw;
                visit(in_index, weight_index, out_index);
              }
            }
        }
}

}  // namespace

template <typename T>
void conv2d_forward_reference(const Conv2dGeometry& g, const T* input, const T* weight, const T* bias, T* output) {
  const int64_t plane = g.out_height() * g.out_width();
  for (int64_t n = 0; n < g.batch; ++n)
    for (int64_t co = 0; co < g.out_channels; ++co)
      std::fill_n(output + (n * g.out_channels + co) * plane, plane, bias ? bias[co] : T(0));
  for_each_tap(g, [&](int64_t in, int64_t w, int64_t out) { output[out] += input[in] * weight[w]; });
}

template <typename T>
void conv2d_backward_data_reference(const Conv2dGeometry& g, const T* grad_output, const T* weight, T* grad_input) {
  std::fill_n(grad_input, g.batch * g.in_channels * g.in_height * g.in_width, T(0));
  for_each_tap(g, [&](int64_t in, int64_t w, int64_t out) { grad_input[in] += grad_output[out] * weight[w]; });
}

template <typename T>
void conv2d_backward_weight_reference(const Conv2dGeometry& g, const T* input, const T* grad_output, T* grad_weight,
                                      T* grad_bias) {
  std::fill_n(grad_weight, g.out_channels * g.in_channels * g.kernel_h * g.kernel_w, T(0));
  for_each_tap(g, [&](int64_t in, int64_t w, int64_t out) { grad_weight[w] += input[in] * grad_output[out]; });
  if (!grad_bias) return;
  const int64_t plane = g.out_height() * g.out_width();
  for (int64_t co = 0; co < g.out_channels; ++co) {
    T total = 0;
    for (int64_t n = 0; n < g.batch; ++n)
      for (int64_t i = 0; i < plane; ++i) total += grad_output[(n * g.out_channels + co) * plane + i];
    grad_bias[co] = total;
  }
}

#define PIXGRAD_INSTANTIATE(T)                                                                                       \
  template void conv2d_forward_reference<T>(const Conv2dGeometry&, const T*, const T*, const T*, T*);                \
  template void conv2d_backward_data_reference<T>(const Conv2dGeometry&, const T*, const T*, T*);                    \
  template void conv2d_backward_weight_reference<T>(const Conv2dGeometry&, const T*, const T*, T*, T*);
PIXGRAD_INSTANTIATE(float)
PIXGRAD_INSTANTIATE(double)
#undef PIXGRAD_INSTANTIATE

}  // namespace pixgrad::kernels::cpu
