// Reductions (to one element, or over one dimension), the per-channel sums
// behind bias gradients, and the L1 loss. On CUDA results stay on the device:
// nothing here waits for the GPU.
#include <pixgrad/core/autograd.h>
#include <pixgrad/core/dispatch.h>
#include <pixgrad/core/ops.h>
#include <pixgrad/core/ops/internal.h>
#include <pixgrad/kernels/cpu/elementwise.h>
#include <pixgrad/kernels/cpu/reduce.h>
#include <pixgrad/kernels/cuda/elementwise.h>
#include <pixgrad/kernels/cuda/reduce.h>

namespace pixgrad {

namespace detail {

Tensor channel_sum(const Tensor& x, const ChannelGroups& layout, const Shape& out_shape) {
  Tensor out = Tensor::empty(out_shape, x.device(), x.dtype());
  const int64_t in_group = layout.batch * layout.channels * layout.spatial;
  run_kernel("sum", x, [&](auto on, auto zero) {
    using T = decltype(zero);
    for (int64_t g = 0; g < layout.groups; ++g)
      sum_per_channel(on, x.data<T>() + g * in_group, layout.batch, layout.channels, layout.spatial,
                      out.data<T>() + g * layout.channels);
  });
  const Shape in_shape = x.shape();
  return record_differentiable(
      "sum", out, {x},
      [layout, in_shape](const Tensor& g, const BackwardContext&) {
        return std::vector<Tensor>{channel_broadcast(g, layout, in_shape)};
      });
}

Tensor channel_broadcast(const Tensor& v, const ChannelGroups& layout, const Shape& out_shape) {
  const bool one_value = layout.groups == 1 && layout.channels == 1;
  Tensor out = one_value ? Tensor::empty(out_shape, v.device(), v.dtype()) : Tensor::zeros(out_shape, v.device(), v.dtype());
  const int64_t out_group = layout.batch * layout.channels * layout.spatial;
  run_kernel("broadcast", v, [&](auto on, auto zero) {
    using T = decltype(zero);
    if (one_value) return fill_from_scalar(on, out.data<T>(), out_group, v.data<T>(), 1.0);
    for (int64_t g = 0; g < layout.groups; ++g)
      add_per_channel(on, out.data<T>() + g * out_group, v.data<T>() + g * layout.channels, layout.batch,
                      layout.channels, layout.spatial);
  });
  const Shape in_shape = v.shape();
  return record_differentiable(
      "broadcast", out, {v},
      [layout, in_shape](const Tensor& g, const BackwardContext&) {
        return std::vector<Tensor>{channel_sum(g, layout, in_shape)};
      });
}

}  // namespace detail

Tensor sum(const Tensor& input) {
  check_nonempty("sum", input);
  Tensor out = Tensor::empty({}, input.device(), input.dtype());
  const int64_t n = input.numel();
  run_kernel("sum", input, [&](auto on, auto zero) {
    using T = decltype(zero);
    sum(on, input.data<T>(), n, out.data<T>());
  });
  const Shape shape = input.shape();
  return record_differentiable("sum", out, {input}, [shape, n](const Tensor& g, const BackwardContext&) {
    return std::vector<Tensor>{detail::channel_broadcast(g, {1, 1, 1, n}, shape)};
  });
}

Tensor mean(const Tensor& input) {
  check_nonempty("mean", input);
  return div(sum(input), static_cast<double>(input.numel()));
}

Tensor sum(const Tensor& input, int64_t dim) {
  check_nonempty("sum", input);
  const int64_t rank = input.dim();
  PIXGRAD_CHECK(dim >= -rank && dim < rank, "sum: dimension ", dim, " out of range for shape ",
                shape_str(input.shape()));
  if (dim < 0) dim += rank;
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < dim; ++d) outer *= input.size(d);
  for (int64_t d = dim + 1; d < rank; ++d) inner *= input.size(d);
  Shape out_shape = input.shape();
  out_shape.erase(out_shape.begin() + dim);
  // [outer, extent, inner] -> [outer, inner]; with inner == 1 one pass sums each row.
  const detail::ChannelGroups layout = inner == 1 ? detail::ChannelGroups{1, 1, outer, input.size(dim)}
                                                  : detail::ChannelGroups{outer, input.size(dim), inner, 1};
  return detail::channel_sum(input, layout, out_shape);
}

Tensor mean(const Tensor& input, int64_t dim) {
  const Tensor total = sum(input, dim);
  return div(total, static_cast<double>(input.numel() / total.numel()));
}

Tensor l1_loss(const Tensor& prediction, const Tensor& target) {
  check_nonempty("l1_loss", prediction, "prediction");
  check_nonempty("l1_loss", target, "target");
  check_same("l1_loss", prediction, target);
  const int64_t count = prediction.numel();
  const double inverse_count = 1.0 / static_cast<double>(count);
  Tensor out = Tensor::empty({}, prediction.device(), prediction.dtype());
  run_kernel("l1_loss", prediction, [&](auto on, auto zero) {
    using T = decltype(zero);
    sum_abs_difference(on, prediction.data<T>(), target.data<T>(), count, inverse_count, out.data<T>());
  });
  return record(
      "l1_loss", out, {prediction, target},
      [count, inverse_count](const Tensor& g, const BackwardContext& context) {
        const Tensor& a = context.input(0);
        const Tensor& b = context.input(1);
        Tensor grad_a = Tensor::empty_like(a);
        run_kernel("l1_loss", a, [&](auto on, auto zero) {
          using T = decltype(zero);
          sign_of_difference(on, a.data<T>(), b.data<T>(), g.data<T>(), inverse_count, grad_a.data<T>(), count);
        });
        return std::vector<Tensor>{grad_a, context.needs_input_grad(1) ? neg(grad_a) : Tensor()};
      },
      {});
}

}  // namespace pixgrad
