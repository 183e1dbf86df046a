// cuDNN convolution: the yardstick for the handwritten kernels.
//
// Math: the same three passes (conv2d_implicit_gemm.cu), computed by cuDNN's
// legacy convolution API (cudnnConvolutionForward / BackwardData /
// BackwardFilter, deprecated in cuDNN 9 but supported; the graph API would be
// the replacement). Cross-correlation, NCHW float32, FP32 compute.
//
// Precision: by default the convolution descriptor's math type is
// CUDNN_FMA_MATH, which restricts cuDNN to kernels built on FP32 FMA
// instructions, and only search results reporting FMA math are accepted (the
// default math would allow TF32 tensor cores on Ampere and later, whose
// 10-bit mantissas miss the CPU results by far more than float rounding).
// With allow_tf32() the descriptor starts at CUDNN_DEFAULT_MATH and any math
// type may win. Either way the math type of the chosen result is set on the
// descriptor before each call: cuDNN picks a kernel by algorithm and math type
// together, so running a result's algorithm under another math type would run
// another kernel than the one that was timed.
//
// Memory and state: one cudnnHandle per device, created on first use and
// bound to that device's stream. Descriptors and the chosen algorithms are
// cached per (device, geometry) for the life of the process (a training run
// has a few dozen geometries). The algorithm is picked once per geometry and
// pass by cudnnFind* (which times every candidate, with its own buffers),
// falling back to the cudnnGet*_v7 heuristics: the fastest one that is
// deterministic and needs at most 1 GiB of workspace. The workspace itself is
// a scratch tensor from pixgrad's caching allocator, released when the call
// returns (the stream orders its reuse). Bias: cudnnAddTensor forward,
// cudnnConvolutionBackwardBias backward.
//
// Because the choice is timed, two processes may pick different algorithms
// for a geometry and round differently; within a process results are
// bit-identical run to run.
#include <cudnn.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <pixgrad/core/error.h>
#include <pixgrad/kernels/cuda/conv2d.h>
#include <pixgrad/kernels/cuda/runtime.cuh>
#include <pixgrad/kernels/cuda/workspace.h>

#define PIXGRAD_CUDNN_CHECK(call)                                                                     \
  do {                                                                                                \
    const cudnnStatus_t pixgrad_cudnn_status_ = (call);                                               \
    if (pixgrad_cudnn_status_ != CUDNN_STATUS_SUCCESS)                                                \
      ::pixgrad::fail(__FILE__, ":", __LINE__, ": ", #call, " failed: ",                              \
                      cudnnGetErrorString(pixgrad_cudnn_status_));                                    \
  } while (0)

namespace pixgrad::kernels::cuda::detail {
namespace {


constexpr int kMaxDevices = 64;
constexpr size_t kMaxWorkspaceBytes = size_t{1} << 30;
const float kOne = 1.0f;
const float kZero = 0.0f;

// Guards the handles and the plan cache; held for a whole call (the calls
// only queue work, so this costs nothing in practice).
std::mutex& cudnn_mutex() {
  static std::mutex mutex;
  return mutex;
}

cudnnHandle_t handle_for(int device) {
  static cudnnHandle_t handles[kMaxDevices] = {};
  PIXGRAD_CHECK(device >= 0 && device < kMaxDevices, "cudnn: device index ", device, " out of range");
  if (!handles[device]) {
    cudnnHandle_t handle = nullptr;
    PIXGRAD_CUDNN_CHECK(cudnnCreate(&handle));
    PIXGRAD_CUDNN_CHECK(cudnnSetStream(handle, ::pixgrad::cuda::current_stream()));
    handles[device] = handle;
  }
  return handles[device];
}

// Descriptors of one geometry and, once chosen, the algorithm and math type
// of each pass. Never destroyed: they live as long as the process (see the
// file comment).
struct Plan {
  cudnnTensorDescriptor_t input = nullptr, output = nullptr, bias = nullptr;
  cudnnFilterDescriptor_t weight = nullptr;
  cudnnConvolutionDescriptor_t convolution = nullptr;
  bool tf32 = false;
  bool forward_ready = false, backward_data_ready = false, backward_filter_ready = false;
  cudnnConvolutionFwdAlgo_t forward_algo{};
  cudnnConvolutionBwdDataAlgo_t backward_data_algo{};
  cudnnConvolutionBwdFilterAlgo_t backward_filter_algo{};
  cudnnMathType_t forward_math = CUDNN_FMA_MATH, backward_data_math = CUDNN_FMA_MATH,
                  backward_filter_math = CUDNN_FMA_MATH;
  size_t forward_workspace = 0, backward_data_workspace = 0, backward_filter_workspace = 0;
};

// device, geometry, TF32 allowed
using PlanKey = std::array<int64_t, 11>;

std::map<PlanKey, std::unique_ptr<Plan>>& plans() {
  static std::map<PlanKey, std::unique_ptr<Plan>> all;
  return all;
}

PlanKey key_of(int device, const Conv2dGeometry& g, bool tf32) {
  return {device,     g.batch,    g.in_channels, g.in_height, g.in_width, g.out_channels,
          g.kernel_h, g.kernel_w, g.stride,      g.padding,   tf32 ? 1 : 0};
}

// The math type a search runs under (an earlier pass may have set another).
cudnnMathType_t search_math(const Plan& plan) { return plan.tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH; }

int checked_int(const char* op, const char* what, int64_t value) {
  PIXGRAD_CHECK(value >= 0 && value <= std::numeric_limits<int>::max(), op, " (cuda, cudnn): ", what, " ", value,
                " does not fit cuDNN's int");
  return static_cast<int>(value);
}

Plan& plan_for(const char* op, int device, const Conv2dGeometry& g) {
  const bool tf32 = allow_tf32();
  const PlanKey key = key_of(device, g, tf32);
  const auto found = plans().find(key);
  if (found != plans().end()) return *found->second;

  // cuDNN's legacy API indexes tensors with int.
  const int64_t out_h = g.out_height(), out_w = g.out_width();
  checked_int(op, "input size", g.batch * g.in_channels * g.in_height * g.in_width);
  checked_int(op, "output size", g.batch * g.out_channels * out_h * out_w);
  checked_int(op, "weight size", g.out_channels * g.in_channels * g.kernel_h * g.kernel_w);
  const int n = checked_int(op, "batch", g.batch), c = checked_int(op, "in_channels", g.in_channels);
  const int h = checked_int(op, "in_height", g.in_height), w = checked_int(op, "in_width", g.in_width);
  const int k = checked_int(op, "out_channels", g.out_channels);
  const int kh = checked_int(op, "kernel_h", g.kernel_h), kw = checked_int(op, "kernel_w", g.kernel_w);
  const int stride = checked_int(op, "stride", g.stride), padding = checked_int(op, "padding", g.padding);

  auto plan = std::make_unique<Plan>();
  plan->tf32 = tf32;
  PIXGRAD_CUDNN_CHECK(cudnnCreateTensorDescriptor(&plan->input));
  PIXGRAD_CUDNN_CHECK(cudnnCreateTensorDescriptor(&plan->output));
  PIXGRAD_CUDNN_CHECK(cudnnCreateTensorDescriptor(&plan->bias));
  PIXGRAD_CUDNN_CHECK(cudnnCreateFilterDescriptor(&plan->weight));
  PIXGRAD_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&plan->convolution));
  PIXGRAD_CUDNN_CHECK(cudnnSetTensor4dDescriptor(plan->input, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, h, w));
  PIXGRAD_CUDNN_CHECK(cudnnSetFilter4dDescriptor(plan->weight, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, k, c, kh, kw));
  PIXGRAD_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(plan->convolution, padding, padding, stride, stride, 1, 1,
                                                      CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  // The math type of the searches; each pass then sets its own choice.
  PIXGRAD_CUDNN_CHECK(cudnnSetConvolutionMathType(plan->convolution, search_math(*plan)));
  int on = 0, oc = 0, oh = 0, ow = 0;
  PIXGRAD_CUDNN_CHECK(
      cudnnGetConvolution2dForwardOutputDim(plan->convolution, plan->input, plan->weight, &on, &oc, &oh, &ow));
  PIXGRAD_CHECK(on == n && oc == k && oh == out_h && ow == out_w, op, " (cuda, cudnn): cuDNN computes an output of [",
                on, ", ", oc, ", ", oh, ", ", ow, "], pixgrad [", n, ", ", k, ", ", out_h, ", ", out_w, "]");
  PIXGRAD_CUDNN_CHECK(cudnnSetTensor4dDescriptor(plan->output, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, k, oh, ow));
  PIXGRAD_CUDNN_CHECK(cudnnSetTensor4dDescriptor(plan->bias, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, k, 1, 1));
  return *plans().emplace(key, std::move(plan)).first->second;
}

// The first (fastest, for cudnnFind*) usable result: it ran, it is
// deterministic, its workspace is bounded, and without TF32 its math type is
// FMA (plain FP32).
template <class Perf>
const Perf* pick(const std::vector<Perf>& results, int count, bool tf32) {
  for (int i = 0; i < count; ++i) {
    const Perf& r = results[static_cast<size_t>(i)];
    if (r.status == CUDNN_STATUS_SUCCESS && r.determinism == CUDNN_DETERMINISTIC &&
        (tf32 || r.mathType == CUDNN_FMA_MATH) && r.memory <= kMaxWorkspaceBytes)
      return &r;
  }
  return nullptr;
}

const char* math_name(cudnnMathType_t math) {
  switch (math) {
    case CUDNN_DEFAULT_MATH: return "default";
    case CUDNN_TENSOR_OP_MATH: return "tensor_op";
    case CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION: return "tensor_op_allow_conversion";
    case CUDNN_FMA_MATH: return "fma";
  }
  return "unknown";
}

const char* algorithm_name(cudnnConvolutionFwdAlgo_t algo) {
  switch (algo) {
    case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM: return "implicit_gemm";
    case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM: return "implicit_precomp_gemm";
    case CUDNN_CONVOLUTION_FWD_ALGO_GEMM: return "gemm";
    case CUDNN_CONVOLUTION_FWD_ALGO_DIRECT: return "direct";
    case CUDNN_CONVOLUTION_FWD_ALGO_FFT: return "fft";
    case CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING: return "fft_tiling";
    case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD: return "winograd";
    case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED: return "winograd_nonfused";
    default: return "unknown";
  }
}

const char* algorithm_name(cudnnConvolutionBwdDataAlgo_t algo) {
  switch (algo) {
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_0: return "algo_0";
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_1: return "algo_1";
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT: return "fft";
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING: return "fft_tiling";
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD: return "winograd";
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED: return "winograd_nonfused";
    default: return "unknown";
  }
}

const char* algorithm_name(cudnnConvolutionBwdFilterAlgo_t algo) {
  switch (algo) {
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0: return "algo_0";
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1: return "algo_1";
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT: return "fft";
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3: return "algo_3";
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED: return "winograd_nonfused";
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING: return "fft_tiling";
    default: return "unknown";
  }
}

std::string describe(const Conv2dGeometry& g) {
  return "batch=" + std::to_string(g.batch) + " in=[" + std::to_string(g.in_channels) + ", " +
         std::to_string(g.in_height) + ", " + std::to_string(g.in_width) + "] out_channels=" +
         std::to_string(g.out_channels) + " kernel=" + std::to_string(g.kernel_h) + "x" +
         std::to_string(g.kernel_w) + " stride=" + std::to_string(g.stride) +
         " padding=" + std::to_string(g.padding);
}

void choose_forward(cudnnHandle_t handle, Plan& plan, const Conv2dGeometry& g) {
  PIXGRAD_CUDNN_CHECK(cudnnSetConvolutionMathType(plan.convolution, search_math(plan)));
  int capacity = 0, count = 0;
  PIXGRAD_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(handle, &capacity));
  std::vector<cudnnConvolutionFwdAlgoPerf_t> results(static_cast<size_t>(std::max(capacity, 1)));
  PIXGRAD_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithm(handle, plan.input, plan.weight, plan.convolution,
                                                           plan.output, capacity, &count, results.data()));
  const cudnnConvolutionFwdAlgoPerf_t* chosen = pick(results, count, plan.tf32);
  if (!chosen) {
    PIXGRAD_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(handle, plan.input, plan.weight, plan.convolution,
                                                               plan.output, capacity, &count, results.data()));
    chosen = pick(results, count, plan.tf32);
  }
  PIXGRAD_CHECK(chosen, "conv2d_forward (cuda, cudnn): no deterministic ", plan.tf32 ? "FP32/TF32" : "FP32 (FMA)",
                " algorithm for ", describe(g));
  plan.forward_algo = chosen->algo;
  plan.forward_math = chosen->mathType;
  PIXGRAD_CUDNN_CHECK(cudnnSetConvolutionMathType(plan.convolution, plan.forward_math));
  PIXGRAD_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(handle, plan.input, plan.weight, plan.convolution,
                                                              plan.output, plan.forward_algo,
                                                              &plan.forward_workspace));
  plan.forward_ready = true;
}

void choose_backward_data(cudnnHandle_t handle, Plan& plan, const Conv2dGeometry& g) {
  PIXGRAD_CUDNN_CHECK(cudnnSetConvolutionMathType(plan.convolution, search_math(plan)));
  int capacity = 0, count = 0;
  PIXGRAD_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(handle, &capacity));
  std::vector<cudnnConvolutionBwdDataAlgoPerf_t> results(static_cast<size_t>(std::max(capacity, 1)));
  PIXGRAD_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithm(handle, plan.weight, plan.output, plan.convolution,
                                                                plan.input, capacity, &count, results.data()));
  const cudnnConvolutionBwdDataAlgoPerf_t* chosen = pick(results, count, plan.tf32);
  if (!chosen) {
    PIXGRAD_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(
        handle, plan.weight, plan.output, plan.convolution, plan.input, capacity, &count, results.data()));
    chosen = pick(results, count, plan.tf32);
  }
  PIXGRAD_CHECK(chosen, "conv2d_backward_data (cuda, cudnn): no deterministic ", plan.tf32 ? "FP32/TF32" : "FP32 (FMA)",
                " algorithm for ", describe(g));
  plan.backward_data_algo = chosen->algo;
  plan.backward_data_math = chosen->mathType;
  PIXGRAD_CUDNN_CHECK(cudnnSetConvolutionMathType(plan.convolution, plan.backward_data_math));
  PIXGRAD_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(handle, plan.weight, plan.output,
                                                                   plan.convolution, plan.input,
                                                                   plan.backward_data_algo,
                                                                   &plan.backward_data_workspace));
  plan.backward_data_ready = true;
}

void choose_backward_filter(cudnnHandle_t handle, Plan& plan, const Conv2dGeometry& g) {
  PIXGRAD_CUDNN_CHECK(cudnnSetConvolutionMathType(plan.convolution, search_math(plan)));
  int capacity = 0, count = 0;
  PIXGRAD_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(handle, &capacity));
  std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> results(static_cast<size_t>(std::max(capacity, 1)));
  PIXGRAD_CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithm(
      handle, plan.input, plan.output, plan.convolution, plan.weight, capacity, &count, results.data()));
  const cudnnConvolutionBwdFilterAlgoPerf_t* chosen = pick(results, count, plan.tf32);
  if (!chosen) {
    PIXGRAD_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
        handle, plan.input, plan.output, plan.convolution, plan.weight, capacity, &count, results.data()));
    chosen = pick(results, count, plan.tf32);
  }
  PIXGRAD_CHECK(chosen, "conv2d_backward_weight (cuda, cudnn): no deterministic ", plan.tf32 ? "FP32/TF32" : "FP32 (FMA)",
                " algorithm for ", describe(g));
  plan.backward_filter_algo = chosen->algo;
  plan.backward_filter_math = chosen->mathType;
  PIXGRAD_CUDNN_CHECK(cudnnSetConvolutionMathType(plan.convolution, plan.backward_filter_math));
  PIXGRAD_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(handle, plan.input, plan.output,
                                                                     plan.convolution, plan.weight,
                                                                     plan.backward_filter_algo,
                                                                     &plan.backward_filter_workspace));
  plan.backward_filter_ready = true;
}

}  // namespace

void cudnn_forward(const Conv2dGeometry& g, const float* input, const float* weight, const float* bias,
                   float* output) {
  const std::lock_guard<std::mutex> lock(cudnn_mutex());
  const int device = ::pixgrad::cuda::current_device();
  const cudnnHandle_t handle = handle_for(device);
  Plan& plan = plan_for("conv2d_forward", device, g);
  if (!plan.forward_ready) choose_forward(handle, plan, g);
  const Workspace scratch(plan.forward_workspace);
  void* space = scratch.data();
  PIXGRAD_CUDNN_CHECK(cudnnSetConvolutionMathType(plan.convolution, plan.forward_math));
  PIXGRAD_CUDNN_CHECK(cudnnConvolutionForward(handle, &kOne, plan.input, input, plan.weight, weight,
                                              plan.convolution, plan.forward_algo, space, plan.forward_workspace,
                                              &kZero, plan.output, output));
  if (bias) PIXGRAD_CUDNN_CHECK(cudnnAddTensor(handle, &kOne, plan.bias, bias, &kOne, plan.output, output));
}

void cudnn_backward_data(const Conv2dGeometry& g, const float* grad_output, const float* weight,
                         float* grad_input) {
  const std::lock_guard<std::mutex> lock(cudnn_mutex());
  const int device = ::pixgrad::cuda::current_device();
  const cudnnHandle_t handle = handle_for(device);
  Plan& plan = plan_for("conv2d_backward_data", device, g);
  if (!plan.backward_data_ready) choose_backward_data(handle, plan, g);
  const Workspace scratch(plan.backward_data_workspace);
  void* space = scratch.data();
  PIXGRAD_CUDNN_CHECK(cudnnSetConvolutionMathType(plan.convolution, plan.backward_data_math));
  PIXGRAD_CUDNN_CHECK(cudnnConvolutionBackwardData(handle, &kOne, plan.weight, weight, plan.output, grad_output,
                                                   plan.convolution, plan.backward_data_algo, space,
                                                   plan.backward_data_workspace, &kZero, plan.input, grad_input));
}

void cudnn_backward_weight(const Conv2dGeometry& g, const float* input, const float* grad_output,
                           float* grad_weight, float* grad_bias) {
  const std::lock_guard<std::mutex> lock(cudnn_mutex());
  const int device = ::pixgrad::cuda::current_device();
  const cudnnHandle_t handle = handle_for(device);
  Plan& plan = plan_for("conv2d_backward_weight", device, g);
  if (!plan.backward_filter_ready) choose_backward_filter(handle, plan, g);
  const Workspace scratch(plan.backward_filter_workspace);
  void* space = scratch.data();
  PIXGRAD_CUDNN_CHECK(cudnnSetConvolutionMathType(plan.convolution, plan.backward_filter_math));
  PIXGRAD_CUDNN_CHECK(cudnnConvolutionBackwardFilter(handle, &kOne, plan.input, input, plan.output, grad_output,
                                                     plan.convolution, plan.backward_filter_algo, space,
                                                     plan.backward_filter_workspace, &kZero, plan.weight,
                                                     grad_weight));
  if (grad_bias)
    PIXGRAD_CUDNN_CHECK(
        cudnnConvolutionBackwardBias(handle, &kOne, plan.output, grad_output, &kZero, plan.bias, grad_bias));
}

ConvChoice cudnn_choice(ConvPass pass, const Conv2dGeometry& g) {
  const std::lock_guard<std::mutex> lock(cudnn_mutex());
  const auto found = plans().find(key_of(::pixgrad::cuda::current_device(), g, allow_tf32()));
  if (found == plans().end()) return {};
  const Plan& plan = *found->second;
  switch (pass) {
    case ConvPass::Forward:
      if (plan.forward_ready) return {algorithm_name(plan.forward_algo), math_name(plan.forward_math)};
      break;
    case ConvPass::BackwardData:
      if (plan.backward_data_ready)
        return {algorithm_name(plan.backward_data_algo), math_name(plan.backward_data_math)};
      break;
    case ConvPass::BackwardWeight:
      if (plan.backward_filter_ready)
        return {algorithm_name(plan.backward_filter_algo), math_name(plan.backward_filter_math)};
      break;
  }
  return {};
}

}  // namespace pixgrad::kernels::cuda::detail
