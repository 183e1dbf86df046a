// Batch norm on the CPU: channels are independent, so each thread takes whole
// channels and makes two passes over that channel's N*S elements (mean, then
// centred sum of squares — the stable two-pass variance), accumulating in
// double. The backward pass needs sum(dy) and sum(dy * xhat) per channel,
// then one more elementwise pass. An epilogue (kernels/norm_epilogue.h) is
// applied to each plane as it is written, while it is in cache; the backward
// undoes it on dy in one pass first. (On the CPU the fusion saves memory
// passes, not launches: each step stays a loop the compiler vectorises.)
#include <pixgrad/kernels/cpu/batch_norm.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace pixgrad::kernels::cpu {

namespace {

// Calls body(pointer to the S elements of channel c in batch item n) for each n.
template <typename T, typename Body>
void for_each_plane(const BatchNormShape& s, T* base, int64_t c, Body body) {
  for (int64_t n = 0; n < s.batch; ++n) body(base + (n * s.channels + c) * s.spatial);
}

// The epilogue applied in place to n values, element `first` onward of the
// tensor: the dropout masks drawn a Philox block (four elements) at a time,
// and each step a loop of its own, which the compiler vectorises.
template <typename T>
void epilogue_in_place(const NormEpilogue& e, T* values, int64_t n, int64_t first) {
  if (e.dropout) {
    for (int64_t i = 0; i < n;) {
      T masks[4];
      epilogue_masks4(e, static_cast<uint64_t>((first + i) / 4), masks);
      for (int64_t k = (first + i) % 4; k < 4 && i < n; ++k, ++i) values[i] = values[i] * masks[k];
    }
  }
  if (e.activation == NormActivation::Relu) {
    for (int64_t i = 0; i < n; ++i) values[i] = Relu::forward(values[i], T(0));
  } else if (e.activation == NormActivation::LeakyRelu) {
    const T slope = static_cast<T>(e.slope);
    for (int64_t i = 0; i < n; ++i) values[i] = LeakyRelu::forward(values[i], slope);
  }
}

// out[i] = epilogue(in[i] * scale + shift) for the S elements of one plane
// whose first element is element `first` of the tensor.
template <typename T>
void normalize_plane(const BatchNormShape& s, const T* in, T scale, T shift, const NormEpilogue& epilogue,
                     int64_t first, T* out) {
  for (int64_t i = 0; i < s.spatial; ++i) out[i] = in[i] * scale + shift;
  if (!epilogue.identity()) epilogue_in_place(epilogue, out, s.spatial, first);
}

// dy with the epilogue undone, act'(y) * dy * mask for every element (y: the
// forward's output), in the order of the separate ops' backward passes.
template <typename T>
std::vector<T> gradient_before_epilogue(const NormEpilogue& e, const T* y, const T* grad_y, int64_t n) {
  std::vector<T> dz(static_cast<size_t>(n));
  constexpr int64_t kChunk = 16384;  // a multiple of 4: a chunk's masks start at a block
#pragma omp parallel for schedule(static)
  for (int64_t begin = 0; begin < n; begin += kChunk) {
    const int64_t end = std::min(n, begin + kChunk);
    T* out = dz.data();
    if (e.activation == NormActivation::Relu) {
      for (int64_t i = begin; i < end; ++i) out[i] = Relu::backward(y[i], grad_y[i], T(0));
    } else if (e.activation == NormActivation::LeakyRelu) {
      const T slope = static_cast<T>(e.slope);
      for (int64_t i = begin; i < end; ++i) out[i] = LeakyRelu::backward(y[i], grad_y[i], slope);
    } else {
      for (int64_t i = begin; i < end; ++i) out[i] = grad_y[i];
    }
    if (!e.dropout) continue;
    for (int64_t i = begin; i < end; i += 4) {
      T masks[4];
      epilogue_masks4(e, static_cast<uint64_t>(i / 4), masks);
      for (int64_t k = 0; k < 4 && i + k < end; ++k) out[i + k] = out[i + k] * masks[k];
    }
  }
  return dz;
}

}  // namespace

template <typename T>
void batch_norm_forward_training(Host, const BatchNormShape& s, const T* x, const T* weight, const T* bias, double eps,
                                 T* y, T* mean, T* invstd, T* unbiased_var, const NormEpilogue& epilogue) {
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
      const int64_t first = (n * s.channels + c) * s.spatial;
      normalize_plane(s, x + first, scale, shift, epilogue, first, y + first);
    }
  }
}

template <typename T>
void batch_norm_forward_inference(Host, const BatchNormShape& s, const T* x, const T* weight, const T* bias,
                                  const T* mean, const T* invstd, T* y, const NormEpilogue& epilogue) {
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < s.batch; ++n) {
    for (int64_t c = 0; c < s.channels; ++c) {
      const T scale = invstd[c] * (weight ? weight[c] : T(1));
      const T shift = (bias ? bias[c] : T(0)) - mean[c] * scale;
      const int64_t first = (n * s.channels + c) * s.spatial;
      normalize_plane(s, x + first, scale, shift, epilogue, first, y + first);
    }
  }
}

template <typename T>
void batch_norm_backward(Host, const BatchNormShape& s, const T* x, const T* grad_y, const T* weight, const T* mean,
                         const T* invstd, bool batch_statistics, T* grad_x, T* grad_weight, T* grad_bias, const T* y,
                         const NormEpilogue& epilogue) {
  if (!epilogue.identity()) {
    const std::vector<T> dz = gradient_before_epilogue(epilogue, y, grad_y, s.batch * s.channels * s.spatial);
    batch_norm_backward(Host{}, s, x, dz.data(), weight, mean, invstd, batch_statistics, grad_x, grad_weight,
                        grad_bias, y, NormEpilogue{});
    return;
  }
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
                                               double, T*, T*, T*, T*, const NormEpilogue&);                    \
  template void batch_norm_forward_inference<T>(Host, const BatchNormShape&, const T*, const T*, const T*,      \
                                                const T*, const T*, T*, const NormEpilogue&);                   \
  template void batch_norm_backward<T>(Host, const BatchNormShape&, const T*, const T*, const T*, const T*,     \
                                       const T*, bool, T*, T*, T*, const T*, const NormEpilogue&);              \
  template void batch_norm_update_running<T>(Host, int64_t, const T*, const T*, double, T*, T*);               \
  template void batch_norm_statistics_from_running<T>(Host, int64_t, const T*, const T*, double, T*, T*);
PIXGRAD_INSTANTIATE(float)
PIXGRAD_INSTANTIATE(double)
#undef PIXGRAD_INSTANTIATE

}  // namespace pixgrad::kernels::cpu
