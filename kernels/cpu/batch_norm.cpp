// Batch norm on the CPU: channels are independent, so each thread takes whole
// channels and makes two passes over that channel's N*S elements (mean, then
// centred sum of squares — the stable two-pass variance), accumulating in
// double, unless the convolution that wrote x gave its channel moments
// (kernels/channel_moments.h), which replace both passes. The backward pass
// needs sum(dy) and sum(dy * xhat) per channel, then one more elementwise
// pass. An epilogue (kernels/norm_epilogue.h) is
// applied to each plane as it is written, while it is in cache; the backward
// undoes it on a channel's dy into a buffer of its thread before the sums.
// (On the CPU the fusion saves memory passes, not launches: each step stays
// a loop of its own, the activations' vectorised.)
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

// Multiplies n values, element `first` onward of the tensor, by their
// dropout masks: the whole blocks of four in a plain loop over blocks, with
// the generator's fields in locals (GCC vectorises the Philox rounds across
// blocks), the partial blocks at either end one element at a time.
template <typename T>
void apply_masks(const NormEpilogue& e, T* values, int64_t n, int64_t first) {
  int64_t i = 0;
  for (; i < n && (first + i) % 4 != 0; ++i) values[i] = values[i] * epilogue_mask<T>(e, first + i);
  const uint64_t seed = e.seed, block = e.offset + static_cast<uint64_t>((first + i) / 4);
  const float threshold = e.threshold;
  const T keep = static_cast<T>(e.keep_scale);
  const int64_t blocks = (n - i) / 4;
  T* whole = values + i;
  for (int64_t b = 0; b < blocks; ++b) {
    const philox::Block bits = philox::block(seed, block + static_cast<uint64_t>(b));
    for (int k = 0; k < 4; ++k)
      whole[4 * b + k] = whole[4 * b + k] * philox::dropout_factor(bits.word[k], threshold, keep);
  }
  for (i += 4 * blocks; i < n; ++i) values[i] = values[i] * epilogue_mask<T>(e, first + i);
}

// The epilogue applied in place to n values, element `first` onward: the
// masks, then the activation, each a loop of its own (the activation's
// vectorised; kernels/elementwise_ops.h writes it without branches).
template <typename T>
void epilogue_in_place(const NormEpilogue& e, T* values, int64_t n, int64_t first) {
  if (e.dropout) apply_masks(e, values, n, first);
  const T slope = static_cast<T>(e.slope);
  if (e.activation == NormActivation::Relu) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) values[i] = Relu::forward(values[i], T(0));
  } else if (e.activation == NormActivation::LeakyRelu) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) values[i] = LeakyRelu::forward(values[i], slope);
  }
}

// dz = act'(y) * dy, then times the masks: the separate ops' backward passes
// in their order, for n values, element `first` onward. (__restrict and a
// local slope let GCC vectorise the activation's loop.)
template <typename T>
void undo_epilogue(const NormEpilogue& e, const T* __restrict y, const T* __restrict dy, int64_t n, int64_t first,
                   T* __restrict dz) {
  const T slope = static_cast<T>(e.slope);
  if (e.activation == NormActivation::Relu) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) dz[i] = Relu::backward(y[i], dy[i], T(0));
  } else if (e.activation == NormActivation::LeakyRelu) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) dz[i] = LeakyRelu::backward(y[i], dy[i], slope);
  } else {
    std::copy(dy, dy + n, dz);
  }
  if (e.dropout) apply_masks(e, dz, n, first);
}

// out[i] = epilogue(in[i] * scale + shift) for the S elements of one plane
// whose first element is element `first` of the tensor, the epilogue applied
// while the plane is in cache.
template <typename T>
void normalize_plane(const BatchNormShape& s, const T* in, T scale, T shift, const NormEpilogue& epilogue,
                     int64_t first, T* out) {
  for (int64_t i = 0; i < s.spatial; ++i) out[i] = in[i] * scale + shift;
  if (!epilogue.identity()) epilogue_in_place(epilogue, out, s.spatial, first);
}

}  // namespace

template <typename T>
void batch_norm_forward_training(Host, const BatchNormShape& s, const T* x, const T* weight, const T* bias, double eps,
                                 T* y, T* mean, T* invstd, T* unbiased_var, const NormEpilogue& given,
                                 const GivenMoments& moments) {
  const NormEpilogue epilogue = given.resolved();
  const double count = static_cast<double>(s.batch * s.spatial);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < s.channels; ++c) {
    double mu = 0, squares = 0;
    if (moments.records != nullptr) {
      const ChannelMoments m = combine_records(moments.records + c * moments.per_channel, moments.per_channel);
      mu = m.mean;
      squares = m.m2;
    } else {
      double total = 0;
      for_each_plane(s, x, c, [&](const T* plane) {
        for (int64_t i = 0; i < s.spatial; ++i) total += plane[i];
      });
      mu = total / count;
      for_each_plane(s, x, c, [&](const T* plane) {
        for (int64_t i = 0; i < s.spatial; ++i) squares += (plane[i] - mu) * (plane[i] - mu);
      });
    }
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
                                  const T* mean, const T* invstd, T* y, const NormEpilogue& given) {
  const NormEpilogue epilogue = given.resolved();
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
                         const NormEpilogue& given) {
  const NormEpilogue epilogue = given.resolved();
  const double count = static_cast<double>(s.batch * s.spatial);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < s.channels; ++c) {
    // With an epilogue, channel c's dy undone into this thread's buffer first.
    thread_local std::vector<T> undone;
    if (!epilogue.identity()) {
      undone.resize(static_cast<size_t>(s.batch * s.spatial));
      for (int64_t n = 0; n < s.batch; ++n) {
        const int64_t first = (n * s.channels + c) * s.spatial;
        undo_epilogue(epilogue, y + first, grad_y + first, s.spatial, first, undone.data() + n * s.spatial);
      }
    }
    const auto grad_of_plane = [&](int64_t n) {
      return epilogue.identity() ? grad_y + (n * s.channels + c) * s.spatial : undone.data() + n * s.spatial;
    };
    const double mu = mean[c], inv = invstd[c];
    double sum_dy = 0, sum_dy_xhat = 0;
    for (int64_t n = 0; n < s.batch; ++n) {
      const T* in = x + (n * s.channels + c) * s.spatial;
      const T* dy = grad_of_plane(n);
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
      const T* dy = grad_of_plane(n);
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
                                               double, T*, T*, T*, T*, const NormEpilogue&, const GivenMoments&); \
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
