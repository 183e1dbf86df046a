#include <pixgrad/kernels/cpu/copy.h>

#include <cstring>

namespace pixgrad::kernels::cpu {

void copy_rows(Host, void* destination, int64_t destination_pitch, const void* source, int64_t source_pitch,
               int64_t row_bytes, int64_t rows) {
  char* to = static_cast<char*>(destination);
  const char* from = static_cast<const char*>(source);
  for (int64_t r = 0; r < rows; ++r)
    std::memcpy(to + r * destination_pitch, from + r * source_pitch, static_cast<size_t>(row_bytes));
}

}  // namespace pixgrad::kernels::cpu
