#include <pixgrad/kernels/cpu/dropout.h>

#include <pixgrad/kernels/philox.h>

namespace pixgrad::kernels::cpu {

template <typename T>
void dropout_mask(Host, T* mask, int64_t n, double p, uint64_t seed, uint64_t offset) {
  const T keep_scale = static_cast<T>(1.0 / (1.0 - p));
  const float threshold = static_cast<float>(p);
#pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; ++i) mask[i] = philox::uniform(seed, offset, i) >= threshold ? keep_scale : T(0);
}

template void dropout_mask<float>(Host, float*, int64_t, double, uint64_t, uint64_t);
template void dropout_mask<double>(Host, double*, int64_t, double, uint64_t, uint64_t);

}  // namespace pixgrad::kernels::cpu
