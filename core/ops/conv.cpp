// conv2d and conv_transpose2d over three differentiable primitives, one per
// kernel pass of a convolution with geometry g:
//
//   convolve(x, w)        y  = F(x, w)    the forward pass
//   convolve_data(dy, w)  dx = D(dy, w)   the backward-data pass
//   convolve_weight(x, dy) dw = W(x, dy)  the backward-weight pass
//
// All three are bilinear and come from one form, <F(x, w), dy> = <x, D(dy, w)>
// = <w, W(x, dy)>, so each one's gradients are the other two:
//
//   F: dx = D(g, w)   dw = W(x, g)
//   D: ddy = F(g, w)  dw = W(g, dy)
//   W: dx = D(dy, g)  ddy = F(x, g)
//
// which makes every backward differentiable again (gradient penalties). A
// transposed convolution is D of its "mirror" convolution, the one that maps
// the transposed convolution's output back to its input with the same weight
// tensor. Bias gradients are per-channel sums (core/ops/internal.h).
#include <pixgrad/core/autograd.h>
#include <pixgrad/core/dispatch.h>
#include <pixgrad/core/ops.h>
#include <pixgrad/core/ops/internal.h>
#include <pixgrad/kernels/conv_settings.h>
#include <pixgrad/kernels/cpu/channel_moments.h>
#include <pixgrad/kernels/cpu/conv2d.h>
#include <pixgrad/kernels/cpu/elementwise.h>
#include <pixgrad/kernels/cuda/conv2d.h>
#include <pixgrad/kernels/cuda/elementwise.h>

namespace pixgrad {

namespace {

using kernels::Conv2dGeometry;

using kernels::ConvPass;

Tensor convolve(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, const Tensor& bias,
                Tensor* moments = nullptr);
Tensor convolve_data(const Conv2dGeometry& g, const Tensor& dy, const Tensor& w, Tensor* moments = nullptr);
Tensor convolve_weight(const Conv2dGeometry& g, const Tensor& x, const Tensor& dy);

// The bias gradient of an [N, C, H, W] output gradient.
Tensor bias_gradient(const Tensor& dy) {
  return detail::channel_sum(dy, {1, dy.size(0), dy.size(1), dy.size(2) * dy.size(3)}, {dy.size(1)});
}

// Room for the channel moments of the output of `pass` on `like`'s device
// (kernels/channel_moments.h), or an undefined tensor when none are asked for.
Tensor moment_records(const Tensor* asked, ConvPass pass, const Conv2dGeometry& g, const Tensor& like) {
  if (asked == nullptr || !kernels::conv_moments()) return Tensor();
  const int64_t channels = pass == ConvPass::Forward ? g.out_channels : g.in_channels;
  int64_t per_channel = 0;
  run_kernel("conv2d moments", like, [&](auto on, auto) { per_channel = conv_moment_records(on, pass, g); });
  if (per_channel == 0) return Tensor();  // the device's convolutions write none now
  return Tensor::empty({channels, per_channel, 3}, like.device(), DType::Float64);
}

// Hands the records over where the kernels wrote them.
void give_moments(Tensor* asked, Tensor records, bool written) {
  if (asked != nullptr) *asked = written ? std::move(records) : Tensor();
}

Tensor convolve(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, const Tensor& bias, Tensor* moments) {
  Tensor y = Tensor::empty({g.batch, g.out_channels, g.out_height(), g.out_width()}, x.device(), x.dtype());
  const Tensor records = moment_records(moments, ConvPass::Forward, g, x);
  bool written = false;
  run_kernel("conv2d", x, [&](auto on, auto zero) {
    using T = decltype(zero);
    written = conv2d_forward_with_moments(on, g, x.data<T>(), w.data<T>(), data_or_null<T>(bias), y.data<T>(),
                                          detail::moment_records_of(records));
  });
  give_moments(moments, records, written);
  return record_differentiable("conv2d", y, {x, w, bias}, [g](const Tensor& dy, const BackwardContext& context) {
    return std::vector<Tensor>{
        context.needs_input_grad(0) ? convolve_data(g, dy, context.input(1)) : Tensor(),
        context.needs_input_grad(1) ? convolve_weight(g, context.input(0), dy) : Tensor(),
        context.needs_input_grad(2) ? bias_gradient(dy) : Tensor()};
  });
}

Tensor convolve_data(const Conv2dGeometry& g, const Tensor& dy, const Tensor& w, Tensor* moments) {
  Tensor dx = Tensor::empty({g.batch, g.in_channels, g.in_height, g.in_width}, dy.device(), dy.dtype());
  const Tensor records = moment_records(moments, ConvPass::BackwardData, g, dy);
  bool written = false;
  run_kernel("conv2d backward-data", dy, [&](auto on, auto zero) {
    using T = decltype(zero);
    written = conv2d_backward_data_with_moments(on, g, dy.data<T>(), w.data<T>(), dx.data<T>(),
                                                detail::moment_records_of(records));
  });
  give_moments(moments, records, written);
  return record_differentiable("conv2d_backward_data", dx, {dy, w}, [g](const Tensor& grad, const BackwardContext& context) {
    return std::vector<Tensor>{
        context.needs_input_grad(0) ? convolve(g, grad, context.input(1), Tensor()) : Tensor(),
        context.needs_input_grad(1) ? convolve_weight(g, grad, context.input(0)) : Tensor()};
  });
}

Tensor convolve_weight(const Conv2dGeometry& g, const Tensor& x, const Tensor& dy) {
  Tensor dw = Tensor::empty({g.out_channels, g.in_channels, g.kernel_h, g.kernel_w}, x.device(), x.dtype());
  run_kernel("conv2d backward-weight", x, [&](auto on, auto zero) {
    using T = decltype(zero);
    conv2d_backward_weight(on, g, x.data<T>(), dy.data<T>(), dw.data<T>(), static_cast<T*>(nullptr));
  });
  return record_differentiable("conv2d_backward_weight", dw, {x, dy}, [g](const Tensor& grad, const BackwardContext& context) {
    return std::vector<Tensor>{
        context.needs_input_grad(0) ? convolve_data(g, context.input(1), grad) : Tensor(),
        context.needs_input_grad(1) ? convolve(g, context.input(0), grad, Tensor()) : Tensor()};
  });
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

Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias, ConvParams params,
              Tensor* output_moments) {
  check_conv_arguments("conv2d", input, weight, bias, params, 1);
  const Conv2dGeometry g{input.size(0), input.size(1),  input.size(2), input.size(3), weight.size(0),
                         weight.size(2), weight.size(3), params.stride, params.padding};
  PIXGRAD_CHECK(input.size(2) + 2 * params.padding >= weight.size(2) &&
                    input.size(3) + 2 * params.padding >= weight.size(3),
                "conv2d: kernel ", shape_str(weight.shape()), " is larger than the padded input ",
                shape_str(input.shape()), " (padding ", params.padding, ")");
  return convolve(g, input, weight, bias, output_moments);
}

Tensor conv_transpose2d(const Tensor& input, const Tensor& weight, const Tensor& bias, ConvParams params,
                        Tensor* output_moments) {
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
  Tensor output;
  {
    NoGradGuard no_grad;  // recorded below as one node, with the bias
    // The records would miss the bias, added after: none then.
    output = convolve_data(mirror, input, weight, bias.defined() ? nullptr : output_moments);
  }
  if (bias.defined()) {
    if (output_moments != nullptr) *output_moments = Tensor();
    run_kernel("conv_transpose2d bias", output, [&](auto on, auto zero) {
      using T = decltype(zero);
      add_per_channel(on, output.data<T>(), bias.data<T>(), mirror.batch, mirror.in_channels, out_h * out_w);
    });
  }
  // The gradients of D (see the top of this file) and the bias's.
  return record_differentiable("conv_transpose2d", output, {input, weight, bias},
                [mirror](const Tensor& g, const BackwardContext& context) {
                  return std::vector<Tensor>{
                      context.needs_input_grad(0) ? convolve(mirror, g, context.input(1), Tensor()) : Tensor(),
                      context.needs_input_grad(1) ? convolve_weight(mirror, g, context.input(0)) : Tensor(),
                      context.needs_input_grad(2) ? bias_gradient(g) : Tensor()};
                });
}

}  // namespace pixgrad
