// The differentiable ops, PyTorch-style free functions. Each is defined, with
// its backward beside its forward, in core/ops/<family>.cpp; the arithmetic
// itself lives in kernels/cpu (and kernels/cuda). Backward passes can be
// differentiated again (Tensor::backward / grad with create_graph, for
// gradient penalties) except those of batch_norm, l1_loss, concat and
// batch_slice, which say so when reached (docs/core.md).
#pragma once

#include <vector>

#include <pixgrad/core/generator.h>
#include <pixgrad/core/tensor.h>
#include <pixgrad/kernels/norm_epilogue.h>

namespace pixgrad {

// ---- convolution (NCHW; weights in PyTorch's layouts) ----
struct ConvParams {
  int64_t stride = 1;
  int64_t padding = 0;
};
// `output_moments`, when given, receives the output's channel moments for a
// batch_norm that reads the output next (its `input_moments`): records
// [C_out, R, 3] in float64 written by the convolution's kernels with the
// output (kernels/channel_moments.h), or an undefined tensor where they
// write none (cuDNN, cuBLAS; conv_transpose2d with a bias; with
// kernels::set_conv_moments(false) or PIXGRAD_CONV_MOMENTS=off, never). Not
// differentiable.
// weight [C_out, C_in, kH, kW]; bias [C_out] or undefined.
Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias = Tensor(), ConvParams params = {},
              Tensor* output_moments = nullptr);
// weight [C_in, C_out, kH, kW]; bias [C_out] or undefined.
// Output extent: (in - 1) * stride - 2 * padding + k.
Tensor conv_transpose2d(const Tensor& input, const Tensor& weight, const Tensor& bias = Tensor(),
                        ConvParams params = {}, Tensor* output_moments = nullptr);

// ---- normalisation and regularisation ----
struct BatchNormParams {
  bool training = true;
  double momentum = 0.1;  // running = (1 - momentum) * running + momentum * batch statistic
  double eps = 1e-5;
};
// What usually follows a normalisation, done as it writes its output:
// dropout (probability `dropout`, in training only, drawn from `generator`,
// the default one when null), then the activation. The result and the
// generator's draws are those of dropout() and relu()/leaky_relu() called
// after it, in one pass instead of three (kernels/norm_epilogue.h).
// A negative slope is allowed but not fused: batch_norm then runs the
// epilogue as separate ops. Build one by name rather than by field order:
//   BatchNormEpilogue::leaky_relu(0.2)      BatchNormEpilogue::relu(0.5)
//   BatchNormEpilogue::dropout_only(0.5)    (the probability last, or alone)
using NormActivation = kernels::NormActivation;  // None, Relu, LeakyRelu
struct BatchNormEpilogue {
  NormActivation activation = NormActivation::None;
  double negative_slope = 0.01;  // LeakyRelu
  double dropout = 0;
  Generator* generator = nullptr;

  static BatchNormEpilogue relu(double dropout = 0) { return {NormActivation::Relu, 0.0, dropout}; }
  static BatchNormEpilogue leaky_relu(double negative_slope, double dropout = 0) {
    return {NormActivation::LeakyRelu, negative_slope, dropout};
  }
  static BatchNormEpilogue dropout_only(double dropout) { return {NormActivation::None, 0.0, dropout}; }
};
// Per-channel normalisation of [N, C, ...]. weight/bias [C] or undefined (no
// affine). running_mean/running_var [C] or undefined; in training they are
// updated in place (variance unbiased); in eval they normalise.
// `out`, when given (a tensor of input's shape, dtype and device that no op
// has produced yet, such as a slot from concat_slots), receives the result
// and is returned as it. Use the returned tensor: an epilogue that cannot be
// fused (a negative slope) leaves `out` unwritten.
// `input_moments`, when defined, are input's channel moments as the
// convolution that produced it gave them (conv2d's `output_moments`): with
// batch statistics they replace two passes over input. They must be that
// very output's, unchanged since: their shape and counts are checked (a
// miscount is refused on the CPU and gives NaN statistics from the
// handwritten CUDA kernels; cuDNN's batch norm ignores the moments), not
// their values, so stale ones give wrong results.
Tensor batch_norm(const Tensor& input, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, BatchNormParams params = {}, const BatchNormEpilogue& epilogue = {},
                  const Tensor& out = Tensor(), const Tensor& input_moments = Tensor());
// The epilogue as separate ops: dropout(), then relu() or leaky_relu().
Tensor apply_epilogue(const Tensor& input, const BatchNormEpilogue& epilogue, bool training);
// Zeroes each element with probability p and scales the rest by 1 / (1 - p);
// the identity when !training. The mask is Philox-drawn from `generator`.
Tensor dropout(const Tensor& input, double p, bool training = true, Generator& generator = default_generator());

// ---- activations ----
Tensor relu(const Tensor& input);
Tensor leaky_relu(const Tensor& input, double negative_slope = 0.01);
Tensor tanh(const Tensor& input);
Tensor sigmoid(const Tensor& input);
Tensor softplus(const Tensor& input);  // log(1 + exp(x)), stable for large |x|
Tensor abs(const Tensor& input);
Tensor neg(const Tensor& input);
Tensor square(const Tensor& input);
Tensor sqrt(const Tensor& input);  // the gradient at 0 is infinite, as in PyTorch

// ---- elementwise arithmetic (tensor operands must have equal shapes) ----
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, double b);
Tensor sub(const Tensor& a, double b);
Tensor mul(const Tensor& a, double b);
Tensor div(const Tensor& a, double b);

// ---- shape ----
// Joins tensors along `dim` (1 = channels for NCHW); other extents must match.
// A new tensor, except for slots of concat_slots joined whole and in order:
// then a view of their buffer, with nothing copied. When every input is one
// block of the result, the gradients it passes back are views of the
// incoming gradient (as add's are the incoming gradient itself).
Tensor concat(const std::vector<Tensor>& inputs, int64_t dim = 1);
// Tensors of the given shapes, uninitialised, for ops to write (an op's
// `out`) and concat(slots, dim) to join without a copy: side by side in one
// buffer. That needs each to be one block of the joined tensor, that is every
// dimension before `dim` of size 1 (a batch of one, joined along the
// channels); otherwise the slots are undefined tensors, an op given one
// allocates its result as usual, and concat copies.
std::vector<Tensor> concat_slots(const std::vector<Shape>& shapes, int64_t dim, Device device = Device::cpu(),
                                 DType dtype = DType::Float32);

// ---- reductions and losses (to one-element tensors of shape [] unless a dimension is given) ----
Tensor sum(const Tensor& input);
Tensor mean(const Tensor& input);
// Over one dimension (negative counts from the end), which the result drops:
// sum(square(g).flatten(1), 1) is each sample's squared norm.
Tensor sum(const Tensor& input, int64_t dim);
Tensor mean(const Tensor& input, int64_t dim);
// mean(|prediction - target|)
Tensor l1_loss(const Tensor& prediction, const Tensor& target);

// ---- in place, never recorded (optimisers, gradient accumulation) ----
void add_(const Tensor& destination, const Tensor& source);  // destination += source
void fill_(const Tensor& destination, double value);
void mul_(const Tensor& destination, double value);  // destination *= value

// Operators, as in PyTorch.
inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator+(const Tensor& a, double b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, double b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, double b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, double b) { return div(a, b); }
inline Tensor operator+(double a, const Tensor& b) { return add(b, a); }
inline Tensor operator*(double a, const Tensor& b) { return mul(b, a); }
inline Tensor operator-(const Tensor& a) { return neg(a); }

}  // namespace pixgrad
