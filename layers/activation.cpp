#include <pixgrad/layers/activation.h>

#include <pixgrad/core/ops.h>

namespace pixgrad::nn {

Tensor ReLU::forward(const Tensor& input) { return relu(input); }
Tensor LeakyReLU::forward(const Tensor& input) { return leaky_relu(input, negative_slope); }
Tensor Tanh::forward(const Tensor& input) { return pixgrad::tanh(input); }
Tensor Sigmoid::forward(const Tensor& input) { return sigmoid(input); }

}  // namespace pixgrad::nn
