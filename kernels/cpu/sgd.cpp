#include <pixgrad/kernels/cpu/sgd.h>

namespace pixgrad::kernels::cpu {

namespace {
constexpr int64_t kParallelThreshold = 1 << 15;
}

template <typename T>
void sgd_update(Host, const SgdStep& s, T* param, const T* grad, T* momentum_buffer, int64_t n, T* nonfinite_flag) {
  const T lr = static_cast<T>(s.lr), momentum = static_cast<T>(s.momentum), decay = static_cast<T>(s.weight_decay);
  int nonfinite = 0;  // as in adam_update: g - g is NaN only for NaN and infinities
  if (momentum_buffer == nullptr || s.momentum == 0) {
#pragma omp parallel for simd reduction(| : nonfinite) if (n > kParallelThreshold)
    for (int64_t i = 0; i < n; ++i) {
      nonfinite |= !(grad[i] - grad[i] == T(0));
      param[i] -= lr * (grad[i] + decay * param[i]);
    }
    if (nonfinite != 0 && nonfinite_flag) nonfinite_flag[0] = T(1);
    return;
  }
#pragma omp parallel for simd reduction(| : nonfinite) if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) {
    nonfinite |= !(grad[i] - grad[i] == T(0));
    const T buffer = momentum * momentum_buffer[i] + grad[i] + decay * param[i];
    momentum_buffer[i] = buffer;
    param[i] -= lr * buffer;
  }
  if (nonfinite != 0 && nonfinite_flag) nonfinite_flag[0] = T(1);
}

template void sgd_update<float>(Host, const SgdStep&, float*, const float*, float*, int64_t, float*);
template void sgd_update<double>(Host, const SgdStep&, double*, const double*, double*, int64_t, double*);

}  // namespace pixgrad::kernels::cpu
