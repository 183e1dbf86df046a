#include <pixgrad/kernels/cpu/random.h>

#include <pixgrad/kernels/philox.h>

namespace pixgrad::kernels::cpu {

template <typename T>
void fill_uniform(Host, T* out, int64_t n, uint64_t seed, uint64_t offset, double low, double high) {
  const T scale = static_cast<T>(high - low);
#pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<T>(low) + scale * static_cast<T>(philox::uniform(seed, offset, i));
}

template <typename T>
void fill_normal(Host, T* out, int64_t n, uint64_t seed, uint64_t offset, double mean, double stddev) {
#pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; ++i)
    out[i] = static_cast<T>(mean) + static_cast<T>(stddev) * static_cast<T>(philox::normal(seed, offset, i));
}

template void fill_uniform<float>(Host, float*, int64_t, uint64_t, uint64_t, double, double);
template void fill_uniform<double>(Host, double*, int64_t, uint64_t, uint64_t, double, double);
template void fill_normal<float>(Host, float*, int64_t, uint64_t, uint64_t, double, double);
template void fill_normal<double>(Host, double*, int64_t, uint64_t, uint64_t, double, double);

}  // namespace pixgrad::kernels::cpu
