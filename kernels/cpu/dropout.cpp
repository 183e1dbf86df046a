#include <pixgrad/kernels/cpu/dropout.h>

#include <pixgrad/kernels/philox.h>

namespace pixgrad::kernels::cpu {

template <typename T>
void dropout_mask(Host, T* mask, int64_t n, double p, uint64_t seed, uint64_t offset, const uint64_t* offset_shift) {
  if (offset_shift != nullptr) offset += *offset_shift;
  const T keep_scale = static_cast<T>(1.0 / (1.0 - p));
  const float threshold = static_cast<float>(p);
  // Element i is word i % 4 of block offset + i / 4 (philox::uniform): one
  // block serves four elements, as in the CUDA kernel.
  const int64_t groups = (n + 3) / 4;
#pragma omp parallel for if (n > 65536)
  for (int64_t g = 0; g < groups; ++g) {
    const philox::Block bits = philox::block(seed, offset + static_cast<uint64_t>(g));
    for (int64_t k = 0; k < 4 && 4 * g + k < n; ++k)
      mask[4 * g + k] = philox::dropout_factor(bits.word[k], threshold, keep_scale);
  }
}

template void dropout_mask<float>(Host, float*, int64_t, double, uint64_t, uint64_t, const uint64_t*);
template void dropout_mask<double>(Host, double*, int64_t, double, uint64_t, uint64_t, const uint64_t*);

}  // namespace pixgrad::kernels::cpu
