// cuBLAS convolution: explicit im2col / col2im around cublasSgemm, the GPU
// twin of kernels/cpu/conv2d.cpp and a second yardstick for the handwritten
// kernels (a good SGEMM fed by a copy, versus no copy at all).
//
// Math, per image b, with col_b = im2col(x_b) of shape [K = Cin*kh*kw][P = OH*OW]
// (row (ci, r, s), column (oh, ow)) and W viewed as [Cout][K]:
//   forward          y_b  = W x col_b                    [Cout][P]
//   backward data    dx_b = col2im(W^T x dy_b)           col2im gathers: each input
//                    pixel sums the col entries read from it, in a fixed order (no atomics)
//   backward weight  dW   = sum_b dy_b x col_b^T          beta = 1 after the first image
//
// Column-major: cuBLAS sees a row-major R[rows][cols] as the column-major
// matrix R^T (cols x rows, leading dimension cols). So each row-major
// product C = A B is issued as C^T = B^T A^T with the operands swapped:
//   forward          y_b^T [P x Cout]  = col_b^T [P x K] * W^T [K x Cout]
//                    sgemm(N, N, m=P, n=Cout, k=K, A=col_b (ld P), B=W (ld K), C=y_b (ld P))
//   backward data    col_b^T [P x K]   = dy_b^T [P x Cout] * W [Cout x K]
//                    sgemm(N, T, m=P, n=K, k=Cout, A=dy_b (ld P), B=W (ld K), C=col_b (ld P))
//   backward weight  dW^T [K x Cout]   = col_b [K x P] * dy_b^T [P x Cout]
//                    sgemm(T, N, m=K, n=Cout, k=P, A=col_b (ld P), B=dy_b (ld P), C=dW (ld K))
// Forward and backward data run a group of images as one strided-batched
// call (W's batch stride is 0). A 1x1, stride-1, unpadded convolution has
// col == x and skips im2col/col2im.
//
// Precision: CUBLAS_DEFAULT_MATH, set explicitly before each call.
// cublasSgemm then computes in FP32 FMA (BF16x9 emulation would need
// CUBLAS_FP32_EMULATED_BF16X9_MATH, which is never set). With allow_tf32()
// the mode is CUBLAS_TF32_TENSOR_OP_MATH: TF32 tensor cores. Atomics stay
// disallowed (the default), so a GPU gives the same bits every run.
//
// Memory: col is a scratch tensor from the caching allocator, for as many
// images as fit in 256 MiB (at least one), reused across the groups of a call
// (every use is ordered on the one stream). One cublasHandle per device,
// created on first use and bound to that device's stream.
#include <cublas_v2.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <mutex>

#include <pixgrad/core/error.h>
#include <pixgrad/kernels/cuda/col_threads.h>
#include <pixgrad/kernels/cuda/conv2d.h>
#include <pixgrad/kernels/cuda/runtime.cuh>
#include <pixgrad/kernels/cuda/workspace.h>

#define PIXGRAD_CUBLAS_CHECK(call)                                                                    \
  do {                                                                                                \
    const cublasStatus_t pixgrad_cublas_status_ = (call);                                             \
    if (pixgrad_cublas_status_ != CUBLAS_STATUS_SUCCESS)                                              \
      ::pixgrad::fail(__FILE__, ":", __LINE__, ": ", #call, " failed: ",                              \
                      cublasGetStatusName(pixgrad_cublas_status_), " (",                              \
                      cublasGetStatusString(pixgrad_cublas_status_), ")");                            \
  } while (0)

namespace pixgrad::kernels::cuda::detail {
namespace {


constexpr int kMaxDevices = 64;
constexpr int64_t kMaxColFloats = int64_t{1} << 26;  // 256 MiB of col per group
const float kOne = 1.0f;
const float kZero = 0.0f;

// ---- kernels -------------------------------------------------------------------

// Each thread's work is in kernels/cuda/col_threads.h, played on the host by
// a test. Grids: x over the columns (output pixels; input pixels for
// col2im), y over the rows (col rows; planes), grid-stride.
__global__ void im2col_kernel(const ColShape s, const float* __restrict__ image, int rows, float* __restrict__ col) {
  im2col_thread(s, image, rows, col, static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x),
                static_cast<int>(blockIdx.y), static_cast<int>(gridDim.y));
}

__global__ void col2im_kernel(const ColShape s, const float* __restrict__ col, int planes,
                              float* __restrict__ image) {
  col2im_thread(s, col, planes, image, static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x),
                static_cast<int>(blockIdx.y), static_cast<int>(gridDim.y));
}

__global__ void add_bias_kernel(float* __restrict__ output, const float* __restrict__ bias, int channels, int pixels,
                                int planes) {
  add_bias_thread(output, bias, channels, pixels, planes, static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x),
                  static_cast<int>(blockIdx.y), static_cast<int>(gridDim.y));
}

// ---- host side ---------------------------------------------------------------------

std::mutex& handle_mutex() {
  static std::mutex mutex;
  return mutex;
}

cublasHandle_t handle_for(int device) {
  static cublasHandle_t handles[kMaxDevices] = {};
  PIXGRAD_CHECK(device >= 0 && device < kMaxDevices, "cublas: device index ", device, " out of range");
  const std::lock_guard<std::mutex> lock(handle_mutex());
  if (!handles[device]) {
    // A workspace of its own, set before any call: cuBLAS then never
    // allocates one, which a CUDA graph capture could not hold and which
    // would change between captures. So the handle must be made outside a
    // capture (a captured step runs eagerly once first).
    const cudaStream_t stream = ::pixgrad::cuda::current_stream();
    ::pixgrad::cuda::refuse_set_up_in_capture("cublas: the first cuBLAS convolution on a device", "cuBLAS");
    cudaDeviceProp properties{};
    PIXGRAD_CUDA_CHECK(cudaGetDeviceProperties(&properties, device));
    // cuBLAS's guide: 32 MiB on Hopper, 4 MiB before it.
    const size_t workspace_bytes = properties.major >= 9 ? size_t(32) << 20 : size_t(4) << 20;
    void* workspace = nullptr;
    PIXGRAD_CUDA_CHECK(cudaMalloc(&workspace, workspace_bytes));  // kept for the life of the process, as the handle
    cublasHandle_t handle = nullptr;
    PIXGRAD_CUBLAS_CHECK(cublasCreate(&handle));
    PIXGRAD_CUBLAS_CHECK(cublasSetStream(handle, stream));
    // After the stream: setting a stream puts cuBLAS's own workspace back.
    PIXGRAD_CUBLAS_CHECK(cublasSetWorkspace(handle, workspace, workspace_bytes));
    PIXGRAD_CUBLAS_CHECK(cublasSetAtomicsMode(handle, CUBLAS_ATOMICS_NOT_ALLOWED));
    PIXGRAD_CUBLAS_CHECK(cublasSetPointerMode(handle, CUBLAS_POINTER_MODE_HOST));
    handles[device] = handle;
  }
  // Plain FP32 (DEFAULT_MATH never lowers the precision of an SGEMM), or
  // TF32 tensor cores when allowed; read on every call, as the switch may
  // change between calls.
  PIXGRAD_CUBLAS_CHECK(
      cublasSetMathMode(handles[device], allow_tf32() ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  return handles[device];
}

// The launch shape of one of the kernels above (col_threads.h).
dim3 grid_of(int64_t columns, int64_t rows) {
  const ColGrid grid = col_grid(columns, rows);
  return dim3(grid.x, grid.y);
}

// The sizes of one call, checked to fit the int arithmetic of the kernels and
// of cuBLAS's dimensions.
struct Shape2d {
  int batch, channels, height, width, out_channels, kernel_h, kernel_w, stride, padding, out_h, out_w;
  int depth;    // K = channels * kernel_h * kernel_w
  int pixels;   // P = out_h * out_w
  int group;    // images per im2col pass
  bool pointwise;
  int64_t in_image() const { return static_cast<int64_t>(channels) * height * width; }
  ColShape col_shape() const { return {channels, height, width, kernel_h, kernel_w, stride, padding, out_h, out_w}; }
  int64_t out_image() const { return static_cast<int64_t>(out_channels) * pixels; }
};

Shape2d shape_of(const char* op, const Conv2dGeometry& g) {
  constexpr int64_t kIntMax = std::numeric_limits<int>::max();
  const int64_t depth = g.in_channels * g.kernel_h * g.kernel_w, pixels = g.out_height() * g.out_width();
  const int64_t col_image = depth * pixels;
  PIXGRAD_CHECK(g.batch * g.in_channels * g.in_height * g.in_width <= kIntMax &&
                    g.batch * g.out_channels * pixels <= kIntMax && g.out_channels * depth <= kIntMax &&
                    col_image <= kIntMax,
                op, " (cuda, cublas): tensors too large for 32-bit indexing (batch=", g.batch, " in=[",
                g.in_channels, ", ", g.in_height, ", ", g.in_width, "] out_channels=", g.out_channels, " kernel=",
                g.kernel_h, "x", g.kernel_w, ")");
  Shape2d s{};
  s.batch = static_cast<int>(g.batch);
  s.channels = static_cast<int>(g.in_channels);
  s.height = static_cast<int>(g.in_height);
  s.width = static_cast<int>(g.in_width);
  s.out_channels = static_cast<int>(g.out_channels);
  s.kernel_h = static_cast<int>(g.kernel_h);
  s.kernel_w = static_cast<int>(g.kernel_w);
  s.stride = static_cast<int>(g.stride);
  s.padding = static_cast<int>(g.padding);
  s.out_h = static_cast<int>(g.out_height());
  s.out_w = static_cast<int>(g.out_width());
  s.depth = static_cast<int>(depth);
  s.pixels = static_cast<int>(pixels);
  s.group = static_cast<int>(std::clamp<int64_t>(kMaxColFloats / std::max<int64_t>(col_image, 1), 1, g.batch));
  s.pointwise = g.kernel_h == 1 && g.kernel_w == 1 && g.stride == 1 && g.padding == 0;
  return s;
}

Workspace col_buffer(const Shape2d& s) {
  if (s.pointwise) return Workspace();
  return Workspace::of<float>(static_cast<int64_t>(s.group) * s.depth * s.pixels);
}

// col for images [first, first + count) of `input`.
void im2col(const Shape2d& s, const float* input, int first, int count, float* col, cudaStream_t stream) {
  const int rows = count * s.depth;
  im2col_kernel<<<grid_of(s.pixels, rows), kColThreads, 0, stream>>>(s.col_shape(), input + first * s.in_image(), rows, col);
  PIXGRAD_CUDA_CHECK_LAUNCH();
}

}  // namespace

void cublas_forward(const Conv2dGeometry& g, const float* input, const float* weight, const float* bias,
                    float* output) {
  const Shape2d s = shape_of("conv2d_forward", g);
  const cublasHandle_t handle = handle_for(::pixgrad::cuda::current_device());
  const cudaStream_t stream = ::pixgrad::cuda::current_stream();
  const Workspace col = col_buffer(s);
  const int64_t col_image = static_cast<int64_t>(s.depth) * s.pixels;  // == in_image() when pointwise
  for (int first = 0; first < s.batch; first += s.group) {
    const int count = std::min(s.group, s.batch - first);
    const float* columns = input + first * s.in_image();
    if (!s.pointwise) {
      im2col(s, input, first, count, col.as<float>(), stream);
      columns = col.as<float>();
    }
    PIXGRAD_CUBLAS_CHECK(cublasSgemmStridedBatched(handle, CUBLAS_OP_N, CUBLAS_OP_N, s.pixels, s.out_channels,
                                                   s.depth, &kOne, columns, s.pixels, col_image, weight, s.depth, 0,
                                                   &kZero, output + first * s.out_image(), s.pixels, s.out_image(),
                                                   count));
  }
  if (bias) {
    const int planes = s.batch * s.out_channels;
    add_bias_kernel<<<grid_of(s.pixels, planes), kColThreads, 0, stream>>>(output, bias, s.out_channels, s.pixels,
                                                                            planes);
    PIXGRAD_CUDA_CHECK_LAUNCH();
  }
}

void cublas_backward_data(const Conv2dGeometry& g, const float* grad_output, const float* weight,
                          float* grad_input) {
  const Shape2d s = shape_of("conv2d_backward_data", g);
  const cublasHandle_t handle = handle_for(::pixgrad::cuda::current_device());
  const cudaStream_t stream = ::pixgrad::cuda::current_stream();
  const Workspace col = col_buffer(s);
  const int64_t col_image = static_cast<int64_t>(s.depth) * s.pixels;
  for (int first = 0; first < s.batch; first += s.group) {
    const int count = std::min(s.group, s.batch - first);
    float* columns = s.pointwise ? grad_input + first * s.in_image() : col.as<float>();
    PIXGRAD_CUBLAS_CHECK(cublasSgemmStridedBatched(handle, CUBLAS_OP_N, CUBLAS_OP_T, s.pixels, s.depth,
                                                   s.out_channels, &kOne, grad_output + first * s.out_image(),
                                                   s.pixels, s.out_image(), weight, s.depth, 0, &kZero, columns,
                                                   s.pixels, col_image, count));
    if (!s.pointwise) {
      const int planes = count * s.channels;
      col2im_kernel<<<grid_of(static_cast<int64_t>(s.height) * s.width, planes), kColThreads, 0, stream>>>(s.col_shape(), columns, planes, grad_input + first * s.in_image());
      PIXGRAD_CUDA_CHECK_LAUNCH();
    }
  }
}

void cublas_backward_weight(const Conv2dGeometry& g, const float* input, const float* grad_output,
                            float* grad_weight, float* grad_bias) {
  const Shape2d s = shape_of("conv2d_backward_weight", g);
  const cublasHandle_t handle = handle_for(::pixgrad::cuda::current_device());
  const cudaStream_t stream = ::pixgrad::cuda::current_stream();
  const Workspace col = col_buffer(s);
  const int64_t col_image = static_cast<int64_t>(s.depth) * s.pixels;
  for (int first = 0; first < s.batch; first += s.group) {
    const int count = std::min(s.group, s.batch - first);
    const float* columns = input + first * s.in_image();
    if (!s.pointwise) {
      im2col(s, input, first, count, col.as<float>(), stream);
      columns = col.as<float>();
    }
    for (int i = 0; i < count; ++i) {
      const float* beta = first + i == 0 ? &kZero : &kOne;
      PIXGRAD_CUBLAS_CHECK(cublasSgemm(handle, CUBLAS_OP_T, CUBLAS_OP_N, s.depth, s.out_channels, s.pixels, &kOne,
                                       columns + i * col_image, s.pixels,
                                       grad_output + (first + i) * s.out_image(), s.pixels, beta, grad_weight,
                                       s.depth));
    }
  }
  if (grad_bias) conv2d_bias_backward(g, grad_output, grad_bias);
}

}  // namespace pixgrad::kernels::cuda::detail
