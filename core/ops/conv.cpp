// conv2d and conv_transpose2d. Both are expressed through the three
// convolution kernels (forward, backward-data, backward-weight): a transposed
// convolution is the backward-data pass of its "mirror" convolution, the one
// that maps the transposed convolution's output back to its input.
#include <pixgrad/core/autograd.h>
#include <pixgrad/core/dispatch.h>
#include <pixgrad/core/ops.h>
#include <pixgrad/kernels/cpu/conv2d.h>
#include <pixgrad/kernels/cpu/conv2d_reference.h>
#include <pixgrad/kernels/cpu/elementwise.h>
#include <pixgrad/kernels/cpu/reduce.h>
#include <pixgrad/kernels/cuda/conv2d.h>
#include <pixgrad/kernels/cuda/elementwise.h>
#include <pixgrad/kernels/cuda/reduce.h>

namespace pixgrad {

namespace {

using kernels::cpu::Conv2dGeometry;

// float runs the fast im2col + SGEMM kernels; double (gradient checks) the
// direct-loop definition.
template <typename T>
struct ConvKernels;

template <>
struct ConvKernels<float> {
  static void forward(const Conv2dGeometry& g, const float* x, const float* w, const float* b, float* y) {
    kernels::cpu::conv2d_forward(g, x, w, b, y);
  }
  static void backward_data(const Conv2dGeometry& g, const float* dy, const float* w, float* dx) {
    kernels::cpu::conv2d_backward_data(g, dy, w, dx);
  }
  static void backward_weight(const Conv2dGeometry& g, const float* x, const float* dy, float* dw, float* db) {
    kernels::cpu::conv2d_backward_weight(g, x, dy, dw, db);
  }
};

template <>
struct ConvKernels<double> {
  static void forward(const Conv2dGeometry& g, const double* x, const double* w, const double* b, double* y) {
    kernels::cpu::conv2d_forward_reference(g, x, w, b, y);
  }
  static void backward_data(const Conv2dGeometry& g, const double* dy, const double* w, double* dx) {
    kernels::cpu::conv2d_backward_data_reference(g, dy, w, dx);
  }
  static void backward_weight(const Conv2dGeometry& g, const double* x, const double* dy, double* dw, double* db) {
    kernels::cpu::conv2d_backward_weight_reference(g, x, dy, dw, db);
  }
};

template <typename T>
T* pointer_or_null(const Tensor& tensor) {
  return tensor.defined() ? tensor.data<T>() : nullptr;
}

// The three passes on the device their tensors live on. Outputs are
// overwritten; undefined bias / grad_bias tensors are skipped.
void forward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y) {
  run_kernel(
      "conv2d", x,
      [&](auto zero) {
        using T = decltype(zero);
        ConvKernels<T>::forward(g, x.data<T>(), w.data<T>(), pointer_or_null<T>(b), y.data<T>());
      },
      PIXGRAD_CUDA_KERNEL([&] {
        kernels::cuda::conv2d_forward(g, x.data<float>(), w.data<float>(), pointer_or_null<float>(b), y.data<float>());
      }));
}

void backward_data(const Conv2dGeometry& g, const Tensor& dy, const Tensor& w, const Tensor& dx) {
  run_kernel(
      "conv2d backward-data", dy,
      [&](auto zero) {
        using T = decltype(zero);
        ConvKernels<T>::backward_data(g, dy.data<T>(), w.data<T>(), dx.data<T>());
      },
      PIXGRAD_CUDA_KERNEL(
          [&] { kernels::cuda::conv2d_backward_data(g, dy.data<float>(), w.data<float>(), dx.data<float>()); }));
}

void backward_weight(const Conv2dGeometry& g, const Tensor& x, const Tensor& dy, const Tensor& dw, const Tensor& db) {
  run_kernel(
      "conv2d backward-weight", x,
      [&](auto zero) {
        using T = decltype(zero);
        ConvKernels<T>::backward_weight(g, x.data<T>(), dy.data<T>(), dw.data<T>(), pointer_or_null<T>(db));
      },
      PIXGRAD_CUDA_KERNEL([&] {
        kernels::cuda::conv2d_backward_weight(g, x.data<float>(), dy.data<float>(), dw.data<float>(),
                                              pointer_or_null<float>(db));
      }));
}

// Per-channel bias of a [N, C, S] tensor: add it, or sum a gradient into it.
void add_bias(const Tensor& y, const Tensor& bias, int64_t batch, int64_t channels, int64_t spatial) {
  run_kernel(
      "conv bias", y,
      [&](auto zero) {
        using T = decltype(zero);
        kernels::cpu::add_per_channel<T>(y.data<T>(), bias.data<T>(), batch, channels, spatial);
      },
      PIXGRAD_CUDA_KERNEL([&] {
        kernels::cuda::add_per_channel(y.data<float>(), bias.data<float>(), batch, channels, spatial);
      }));
}

void sum_bias_gradient(const Tensor& dy, const Tensor& db, int64_t batch, int64_t channels, int64_t spatial) {
  run_kernel(
      "conv bias", dy,
      [&](auto zero) {
        using T = decltype(zero);
        kernels::cpu::sum_per_channel<T>(dy.data<T>(), batch, channels, spatial, db.data<T>());
      },
      PIXGRAD_CUDA_KERNEL([&] {
        kernels::cuda::sum_per_channel(dy.data<float>(), batch, channels, spatial, db.data<float>());
      }));
}

// Shape checks shared by both ops; `weight_in_channels_dim` is 1 for conv2d's
// [C_out, C_in, kH, kW] and 0 for conv_transpose2d's [C_in, C_out, kH, kW].
void check_conv_arguments(const char* op, const Tensor& input, const Tensor& weight, const Tensor& bias,
                          ConvParams params, int weight_in_channels_dim) {
  check_nonempty(op, input);
  check_nonempty(op, weight, "weight");
  PIXGRAD_CHECK(input.dim() == 4, op, ": input ", shape_str(input.shape()), " is not [N, C, H, W]");
  PIXGRAD_CHECK(weight.dim() == 4, op, ": weight ", shape_str(weight.shape()), " is not 4-d");
  PIXGRAD_CHECK(weight.dtype() == input.dtype() && weight.device() == input.device(), op, ": weight is ",
                to_string(weight.dtype()), " on ", weight.device().str(), ", input is ", to_string(input.dtype()),
                " on ", input.device().str());
  PIXGRAD_CHECK(weight.size(weight_in_channels_dim) == input.size(1), op, ": input ", shape_str(input.shape()),
                " has ", input.size(1), " channels but weight ", shape_str(weight.shape()), " expects ",
                weight.size(weight_in_channels_dim));
  PIXGRAD_CHECK(params.stride >= 1 && params.padding >= 0, op, ": stride ", params.stride, " / padding ",
                params.padding, " invalid");
  if (bias.defined()) {
    const int64_t out_channels = weight.size(1 - weight_in_channels_dim);
    PIXGRAD_CHECK(bias.shape() == Shape{out_channels} && bias.dtype() == input.dtype() &&
                      bias.device() == input.device(),
                  op, ": bias ", shape_str(bias.shape()), " does not match ", out_channels, " output channels");
  }
}

}  // namespace

Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias, ConvParams params) {
  check_conv_arguments("conv2d", input, weight, bias, params, 1);
  const Conv2dGeometry g{input.size(0), input.size(1),  input.size(2), input.size(3), weight.size(0),
                         weight.size(2), weight.size(3), params.stride, params.padding};
  PIXGRAD_CHECK(input.size(2) + 2 * params.padding >= weight.size(2) &&
                    input.size(3) + 2 * params.padding >= weight.size(3),
                "conv2d: kernel ", shape_str(weight.shape()), " is larger than the padded input ",
                shape_str(input.shape()), " (padding ", params.padding, ")");
  Tensor output = Tensor::empty({g.batch, g.out_channels, g.out_height(), g.out_width()}, input.device(), input.dtype());
  forward(g, input, weight, bias, output);

  const Tensor x = input.detach(), w = weight.detach();
  const bool input_needs = input.requires_grad(), weight_needs = weight.requires_grad();
  const bool bias_needs = bias.defined() && bias.requires_grad();
  return record("conv2d", output, {input, weight, bias}, [=](const Tensor& g_out) {
    Tensor grad_x = input_needs ? Tensor::empty_like(x) : Tensor();
    Tensor grad_w = weight_needs || bias_needs ? Tensor::empty_like(w) : Tensor();
    Tensor grad_b = bias_needs ? Tensor::empty({g.out_channels}, x.device(), x.dtype()) : Tensor();
    if (input_needs) backward_data(g, g_out, w, grad_x);
    if (grad_w.defined()) backward_weight(g, x, g_out, grad_w, grad_b);
    return std::vector<Tensor>{grad_x, weight_needs ? grad_w : Tensor(), grad_b};
  });
}

Tensor conv_transpose2d(const Tensor& input, const Tensor& weight, const Tensor& bias, ConvParams params) {
  check_conv_arguments("conv_transpose2d", input, weight, bias, params, 0);
  const int64_t out_h = (input.size(2) - 1) * params.stride - 2 * params.padding + weight.size(2);
  const int64_t out_w = (input.size(3) - 1) * params.stride - 2 * params.padding + weight.size(3);
  PIXGRAD_CHECK(out_h > 0 && out_w > 0, "conv_transpose2d: input ", shape_str(input.shape()), " with weight ",
                shape_str(weight.shape()), ", stride ", params.stride, ", padding ", params.padding,
                " gives an empty output");
  // The mirror convolution: from this op's output [N, C_out, out_h, out_w]
  // back to its input [N, C_in, H, W], with the same weight tensor.
  const Conv2dGeometry mirror{input.size(0), weight.size(1), out_h,         out_w,         weight.size(0),
                              weight.size(2), weight.size(3), params.stride, params.padding};
  const int64_t out_channels = weight.size(1);
  Tensor output = Tensor::empty({input.size(0), out_channels, out_h, out_w}, input.device(), input.dtype());
  backward_data(mirror, input, weight, output);
  if (bias.defined()) add_bias(output, bias, input.size(0), out_channels, out_h * out_w);

  const Tensor x = input.detach(), w = weight.detach();
  const bool input_needs = input.requires_grad(), weight_needs = weight.requires_grad();
  const bool bias_needs = bias.defined() && bias.requires_grad();
  return record("conv_transpose2d", output, {input, weight, bias}, [=](const Tensor& g_out) {
    Tensor grad_x = input_needs ? Tensor::empty_like(x) : Tensor();
    Tensor grad_w = weight_needs ? Tensor::empty_like(w) : Tensor();
    Tensor grad_b = bias_needs ? Tensor::empty({out_channels}, x.device(), x.dtype()) : Tensor();
    if (input_needs) forward(mirror, g_out, w, Tensor(), grad_x);
    if (weight_needs) backward_weight(mirror, g_out, x, grad_w, Tensor());
    if (bias_needs) sum_bias_gradient(g_out, grad_b, mirror.batch, out_channels, out_h * out_w);
    return std::vector<Tensor>{grad_x, grad_w, grad_b};
  });
}

}  // namespace pixgrad
