#include <pixgrad/layers/activation.h>

#include <pixgrad/core/ops.h>
#include <pixgrad/layers/forward_hook.h>

namespace pixgrad::nn {

Tensor ReLU::forward(const Tensor& input) { return apply_forward_hook(*this, input, relu(input)); }
Tensor LeakyReLU::forward(const Tensor& input) {
  return apply_forward_hook(*this, input, leaky_relu(input, negative_slope));
}
Tensor Tanh::forward(const Tensor& input) { return apply_forward_hook(*this, input, pixgrad::tanh(input)); }
Tensor Sigmoid::forward(const Tensor& input) { return apply_forward_hook(*this, input, sigmoid(input)); }

}  // namespace pixgrad::nn
