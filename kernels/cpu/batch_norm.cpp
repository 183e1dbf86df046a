// Batch norm on the CPU: channels are independent, so each thread takes whole
// channels and makes two passes over that channel's N*S elements (mean, then
// centred sum of squares — the stable two-pass variance), accumulating in
// double. The backward pass needs sum(dy) and sum(dy * xhat) per channel,
// then one more elementwise pass.
#include <pixgrad/kernels/cpu/batch_norm.h>

#include <cmath>

namespace pixgrad::kernels::cpu {

namespace {

// Calls body(pointer to the S elements of channel c in batch item n) for each n.
template <typename T, typename Body>
void for_each_plane(const BatchNormShape& s, T* base, int64_t c, Body body) {
  for (int64_t n = 0; n < s.batch; ++n) body(base + (n * s.channels + c) * s.spatial);
}

}  // namespace

template <typename T>
void batch_norm_forward_training(Host, const BatchNormShape& s, const T* x, const T* weight, const T* bias, double eps,
                                 T* y, T* mean, T* invstd, T* unbiased_var) {
  const double count = static_cast<double>(s.batch * s.spatial);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < s.channels; ++c) {
    double total = 0;
    for_each_plane(s, x, c, [&](const T* plane) {
      for (int64_t i = 0; i < s.spatial; ++i) total += plane[i];
    });
    const double mu = total / count;
    double squares = 0;
    for_each_plane(s, x, c, [&](const T* plane) {
      for (int64_t i = 0; i < s.spatial; ++i) squares += (plane[i] - mu) * (plane[i] - mu);
    });
    const double variance = squares / count;
    const double inv = 1.0 / std::sqrt(variance + eps);
    mean[c] = static_cast<T>(mu);
    invstd[c] = static_cast<T>(inv);
    unbiased_var[c] = static_cast<T>(count > 1 ? squares / (count - 1) : variance);
    const T scale = static_cast<T>(inv * (weight ? weight[c] : 1.0));
    const T shift = static_cast<T>((bias ? bias[c] : 0.0) - mu * inv * (weight ? weight[c] : 1.0));
    for (int64_t n = 0; n < s.batch; ++n) {
      const T* in = x + (n * s.channels + c) * s.spatial;
      T* out = y + (n * s.channels + c) * s.spatial;
      for (int64_t i = 0; i < s.spatial; ++i) out[i] = in[i] * scale + shift;
    }
  }
}

template <typename T>
void batch_norm_forward_inference(Host, const BatchNormShape& s, const T* x, const T* weight, const T* bias,
                                  const T* mean, const T* invstd, T* y) {
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < s.batch; ++n) {
    for (int64_t c = 0; c < s.channels; ++c) {
      const T scale = invstd[c] * (weight ? weight[c] : T(1));
      const T shift = (bias ? bias[c] : T(0)) - mean[c] * scale;
      const T* in = x + (n * s.channels + c) * s.spatial;
      T* out = y + (n * s.channels + c) * s.spatial;
      for (int64_t i = 0; i < s.spatial; ++i) out[i] = in[i] * scale + shift;
    }
  }
}

template <typename T>
void batch_norm_backward(Host, const BatchNormShape& s, const T* x, const T* grad_y, const T* weight, const T* mean,
                         const T* invstd, bool batch_statistics, T* grad_x, T* grad_weight, T* grad_bias) {
  const double count = static_cast<double>(s.batch * s.spatial);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < s.channels; ++c) {
    const double mu = mean[c], inv = invstd[c];
    double sum_dy = 0, sum_dy_xhat = 0;
    for (int64_t n = 0; n < s.batch; ++n) {
      const T* in = x + (n * s.channels + c) * s.spatial;
      const T* dy = grad_y + (n * s.channels + c) * s.spatial;
      for (int64_t i = 0; i < s.spatial; ++i) {
        sum_dy += dy[i];
        sum_dy_xhat += dy[i] * (in[i] - mu) * inv;
      }
    }
    if (grad_weight) grad_weight[c] = static_cast<T>(sum_dy_xhat);
    if (grad_bias) grad_bias[c] = static_cast<T>(sum_dy);
    if (!grad_x) continue;
    const double gamma = weight ? weight[c] : 1.0;
    // dx = gamma * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)) with batch statistics,
    // dx = gamma * invstd * dy with fixed ones.
    const double mean_dy = batch_statistics ? sum_dy / count : 0.0;
    const double mean_dy_xhat = batch_statistics ? sum_dy_xhat / count : 0.0;
    for (int64_t n = 0; n < s.batch; ++n) {
      const T* in = x + (n * s.channels + c) * s.spatial;
      const T* dy = grad_y + (n * s.channels + c) * s.spatial;
      T* dx = grad_x + (n * s.channels + c) * s.spatial;
      for (int64_t i = 0; i < s.spatial; ++i) {
        const double xhat = (in[i] - mu) * inv;
        dx[i] = static_cast<T>(gamma * inv * (dy[i] - mean_dy - xhat * mean_dy_xhat));
      }
    }
  }
}

template <typename T>
void batch_norm_update_running(Host, int64_t channels, const T* mean, const T* unbiased_var, double momentum,
                               T* running_mean, T* running_var) {
  const T m = static_cast<T>(momentum);
  for (int64_t c = 0; c < channels; ++c) {
    running_mean[c] = (T(1) - m) * running_mean[c] + m * mean[c];
    running_var[c] = (T(1) - m) * running_var[c] + m * unbiased_var[c];
  }
}

template <typename T>
void batch_norm_statistics_from_running(Host, int64_t channels, const T* running_mean, const T* running_var,
                                        double eps, T* mean, T* invstd) {
  for (int64_t c = 0; c < channels; ++c) {
    mean[c] = running_mean[c];
    invstd[c] = static_cast<T>(1.0 / std::sqrt(static_cast<double>(running_var[c]) + eps));
  }
}

#define PIXGRAD_INSTANTIATE(T)                                                                                  \
  template void batch_norm_forward_training<T>(Host, const BatchNormShape&, const T*, const T*, const T*,       \
                                               double, T*, T*, T*, T*);                                         \
  template void batch_norm_forward_inference<T>(Host, const BatchNormShape&, const T*, const T*, const T*,      \
                                                const T*, const T*, T*);                                        \
  template void batch_norm_backward<T>(Host, const BatchNormShape&, const T*, const T*, const T*, const T*,     \
                                       const T*, bool, T*, T*, T*);                                             \
  template void batch_norm_update_running<T>(Host, int64_t, const T*, const T*, double, T*, T*);               \
  template void batch_norm_statistics_from_running<T>(Host, int64_t, const T*, const T*, double, T*, T*);
PIXGRAD_INSTANTIATE(float)
PIXGRAD_INSTANTIATE(double)
#undef PIXGRAD_INSTANTIATE

}  // namespace pixgrad::kernels::cpu
