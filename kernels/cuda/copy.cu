// Pitched row copies on the device (concat and its backward): `rows` rows of
// `row_bytes`, at the given pitches. cudaMemcpy2DAsync does the strided copy
// with the copy engines' own addressing, so there is no kernel to write; a
// fully contiguous copy (both pitches equal to row_bytes, or a single row) is
// one plain cudaMemcpyAsync. cudaMemcpy2D refuses pitches above the device's
// maximum (cudaDevAttrMaxPitch, 2^31 - 1 bytes on current GPUs); beyond it the
// rows go one cudaMemcpyAsync each.
#include <pixgrad/kernels/cuda/copy.h>

#include <cstdint>

#include <pixgrad/kernels/cuda/runtime.cuh>

namespace pixgrad::kernels::cuda {

void copy_rows(Gpu, void* destination, int64_t destination_pitch, const void* source, int64_t source_pitch,
               int64_t row_bytes, int64_t rows) {
  if (row_bytes <= 0 || rows <= 0) return;
  PIXGRAD_CHECK(destination_pitch >= row_bytes && source_pitch >= row_bytes, "cuda copy_rows: rows of ", row_bytes,
                " bytes do not fit pitches ", destination_pitch, " and ", source_pitch);
  const cudaStream_t stream = ::pixgrad::cuda::current_stream();
  auto* to = static_cast<char*>(destination);
  const auto* from = static_cast<const char*>(source);
  if (rows == 1 || (destination_pitch == row_bytes && source_pitch == row_bytes)) {
    PIXGRAD_CUDA_CHECK(
        cudaMemcpyAsync(to, from, static_cast<size_t>(row_bytes * rows), cudaMemcpyDeviceToDevice, stream));
    return;
  }
  int max_pitch = 0;
  PIXGRAD_CUDA_CHECK(cudaDeviceGetAttribute(&max_pitch, cudaDevAttrMaxPitch, ::pixgrad::cuda::current_device()));
  if (destination_pitch <= max_pitch && source_pitch <= max_pitch) {
    PIXGRAD_CUDA_CHECK(cudaMemcpy2DAsync(to, static_cast<size_t>(destination_pitch), from,
                                         static_cast<size_t>(source_pitch), static_cast<size_t>(row_bytes),
                                         static_cast<size_t>(rows), cudaMemcpyDeviceToDevice, stream));
    return;
  }
  for (int64_t r = 0; r < rows; ++r)
    PIXGRAD_CUDA_CHECK(cudaMemcpyAsync(to + r * destination_pitch, from + r * source_pitch,
                                       static_cast<size_t>(row_bytes), cudaMemcpyDeviceToDevice, stream));
}

}  // namespace pixgrad::kernels::cuda
