#include <pixgrad/kernels/cpu/sgd.h>

namespace pixgrad::kernels::cpu {

namespace {
constexpr int64_t kParallelThreshold = 1 << 15;
}

template <typename T>
bool sgd_update(const SgdStep& s, T* param, const T* grad, T* momentum_buffer, int64_t n) {
  const T lr = static_cast<T>(s.lr), momentum = static_cast<T>(s.momentum), decay = static_cast<T>(s.weight_decay);
  int nonfinite = 0;  // as in adam_update: g - g is NaN only for NaN and infinities
  if (momentum_buffer == nullptr || s.momentum == 0) {
#pragma omp parallel for simd reduction(| : nonfinite) if (n > kParallelThreshold)
    for (int64_t i = 0; i < n; ++i) {
      nonfinite |= !(grad[i] - grad[i] == T(0));
      param[i] -= lr * (grad[i] + decay * param[i]);
    }
    return nonfinite == 0;
  }
#pragma omp parallel for simd reduction(| : nonfinite) if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) {
    nonfinite |= !(grad[i] - grad[i] == T(0));
    const T buffer = momentum * momentum_buffer[i] + grad[i] + decay * param[i];
    momentum_buffer[i] = buffer;
    param[i] -= lr * buffer;
  }
  return nonfinite == 0;
}

template bool sgd_update<float>(const SgdStep&, float*, const float*, float*, int64_t);
template bool sgd_update<double>(const SgdStep&, double*, const double*, double*, int64_t);

}  // namespace pixgrad::kernels::cpu
