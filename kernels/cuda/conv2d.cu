// The CUDA convolution dispatcher: which implementation runs, and the checks
// every implementation relies on.
//
// The choice is process-wide (kernels/conv_settings.h). The three
// implementations compute the same function; they differ in speed and in
// how many kernels they launch, never in results beyond float rounding.
//
// Validation lives here so that the implementations can assume a sane
// geometry with batch >= 1: an empty batch is handled once for all of them
// (nothing to write, or a zero gradient), without launching anything.
#include <pixgrad/kernels/cuda/conv2d.h>

#include <sstream>
#include <string>

#include <pixgrad/core/error.h>
#include <pixgrad/kernels/cuda/runtime.cuh>

namespace pixgrad::kernels::cuda {
namespace {

std::string describe(const Conv2dGeometry& g) {
  std::ostringstream out;
  out << "batch=" << g.batch << " in=[" << g.in_channels << ", " << g.in_height << ", " << g.in_width
      << "] out_channels=" << g.out_channels << " kernel=" << g.kernel_h << "x" << g.kernel_w
      << " stride=" << g.stride << " padding=" << g.padding;
  return out.str();
}

void check_geometry(const char* op, ConvImpl impl, const Conv2dGeometry& g) {
  const bool ok = g.batch >= 0 && g.in_channels > 0 && g.in_height > 0 && g.in_width > 0 && g.out_channels > 0 &&
                  g.kernel_h > 0 && g.kernel_w > 0 && g.stride > 0 && g.padding >= 0 &&
                  g.in_height + 2 * g.padding >= g.kernel_h && g.in_width + 2 * g.padding >= g.kernel_w;
  if (!ok) fail(op, " (cuda, ", to_string(impl), "): invalid geometry (", describe(g), ")");
}

void check_pointer(const char* op, const char* role, const void* pointer) {
  PIXGRAD_CHECK(pointer != nullptr, op, " (cuda): ", role, " is null");
}

// The passes with an output that a batch norm may read next: whether they
// wrote its moments (only the handwritten kernels do, given somewhere to).
bool run_forward(ConvImpl impl, const Conv2dGeometry& g, const float* input, const float* weight, const float* bias,
                 float* output, MomentRecord* moments) {
  constexpr const char* op = "conv2d_forward";
  check_geometry(op, impl, g);
  if (g.batch == 0) return false;
  check_pointer(op, "input", input);
  check_pointer(op, "weight", weight);
  check_pointer(op, "output", output);
  switch (impl) {
    case ConvImpl::Handwritten:
      detail::implicit_gemm_forward(g, input, weight, bias, output, moments);
      return moments != nullptr;
    case ConvImpl::Cudnn: detail::cudnn_forward(g, input, weight, bias, output); return false;
    case ConvImpl::Cublas: detail::cublas_forward(g, input, weight, bias, output); return false;
  }
  fail(op, ": unknown implementation ", static_cast<int>(impl));
}

bool run_backward_data(ConvImpl impl, const Conv2dGeometry& g, const float* grad_output, const float* weight,
                       float* grad_input, MomentRecord* moments) {
  constexpr const char* op = "conv2d_backward_data";
  check_geometry(op, impl, g);
  if (g.batch == 0) return false;
  check_pointer(op, "grad_output", grad_output);
  check_pointer(op, "weight", weight);
  check_pointer(op, "grad_input", grad_input);
  switch (impl) {
    case ConvImpl::Handwritten:
      detail::implicit_gemm_backward_data(g, grad_output, weight, grad_input, moments);
      return moments != nullptr;
    case ConvImpl::Cudnn: detail::cudnn_backward_data(g, grad_output, weight, grad_input); return false;
    case ConvImpl::Cublas: detail::cublas_backward_data(g, grad_output, weight, grad_input); return false;
  }
  fail(op, ": unknown implementation ", static_cast<int>(impl));
}

}  // namespace

const char* to_string(ConvPass pass) {
  switch (pass) {
    case ConvPass::Forward: return "forward";
    case ConvPass::BackwardData: return "backward_data";
    case ConvPass::BackwardWeight: return "backward_weight";
  }
  return "unknown";
}

ConvChoice conv_choice(ConvImpl impl, ConvPass pass, const Conv2dGeometry& g) {
  switch (impl) {
    case ConvImpl::Handwritten: {
      // The GEMM's rows are the output channels, or the input channels for backward data.
      const int64_t rows = pass == ConvPass::BackwardData ? g.in_channels : g.out_channels;
      return {"implicit_gemm", rows <= detail::kFp32OnlyRows ? "fp32" : to_string(conv_precision())};
    }
    case ConvImpl::Cublas: return {"im2col+sgemm", allow_tf32() ? "tf32" : "fp32"};
    case ConvImpl::Cudnn: return detail::cudnn_choice(pass, g);
  }
  return {};
}

void conv2d_forward(Gpu, ConvImpl impl, const Conv2dGeometry& g, const float* input, const float* weight,
                    const float* bias, float* output) {
  run_forward(impl, g, input, weight, bias, output, nullptr);
}

void conv2d_backward_data(Gpu, ConvImpl impl, const Conv2dGeometry& g, const float* grad_output,
                          const float* weight, float* grad_input) {
  run_backward_data(impl, g, grad_output, weight, grad_input, nullptr);
}

void conv2d_backward_weight(Gpu, ConvImpl impl, const Conv2dGeometry& g, const float* input,
                            const float* grad_output, float* grad_weight, float* grad_bias) {
  constexpr const char* op = "conv2d_backward_weight";
  check_geometry(op, impl, g);
  check_pointer(op, "grad_weight", grad_weight);
  if (g.batch == 0) {
    // The sum over an empty batch.
    const cudaStream_t stream = ::pixgrad::cuda::current_stream();
    const size_t weight_bytes =
        sizeof(float) * static_cast<size_t>(g.out_channels * g.in_channels * g.kernel_h * g.kernel_w);
    PIXGRAD_CUDA_CHECK(cudaMemsetAsync(grad_weight, 0, weight_bytes, stream));
    if (grad_bias)
      PIXGRAD_CUDA_CHECK(cudaMemsetAsync(grad_bias, 0, sizeof(float) * static_cast<size_t>(g.out_channels), stream));
    return;
  }
  check_pointer(op, "input", input);
  check_pointer(op, "grad_output", grad_output);
  switch (impl) {
    case ConvImpl::Handwritten:
      return detail::implicit_gemm_backward_weight(g, input, grad_output, grad_weight, grad_bias);
    case ConvImpl::Cudnn: return detail::cudnn_backward_weight(g, input, grad_output, grad_weight, grad_bias);
    case ConvImpl::Cublas: return detail::cublas_backward_weight(g, input, grad_output, grad_weight, grad_bias);
  }
  fail(op, ": unknown implementation ", static_cast<int>(impl));
}

void conv2d_forward(Gpu, const Conv2dGeometry& g, const float* input, const float* weight, const float* bias,
                    float* output) {
  conv2d_forward(gpu, conv_impl(), g, input, weight, bias, output);
}

int64_t conv_moment_records(Gpu, ConvPass pass, const Conv2dGeometry& g) {
  if (conv_impl() != ConvImpl::Handwritten) return 0;
  check_geometry("conv_moment_records", ConvImpl::Handwritten, g);
  return detail::moment_records(pass, g);
}

bool conv2d_forward_with_moments(Gpu, const Conv2dGeometry& g, const float* input, const float* weight,
                                 const float* bias, float* output, MomentRecord* moments) {
  return run_forward(conv_impl(), g, input, weight, bias, output, moments);
}

bool conv2d_backward_data_with_moments(Gpu, const Conv2dGeometry& g, const float* grad_output, const float* weight,
                                       float* grad_input, MomentRecord* moments) {
  return run_backward_data(conv_impl(), g, grad_output, weight, grad_input, moments);
}

void conv2d_backward_data(Gpu, const Conv2dGeometry& g, const float* grad_output, const float* weight,
                          float* grad_input) {
  conv2d_backward_data(gpu, conv_impl(), g, grad_output, weight, grad_input);
}

void conv2d_backward_weight(Gpu, const Conv2dGeometry& g, const float* input, const float* grad_output,
                            float* grad_weight, float* grad_bias) {
  conv2d_backward_weight(gpu, conv_impl(), g, input, grad_output, grad_weight, grad_bias);
}

}  // namespace pixgrad::kernels::cuda
