#include <pixgrad/layers/init.h>

namespace pixgrad::nn::init {

// The draws are made on the host and copied in, so the numbers do not depend
// on the tensor's device.
void normal_(const Tensor& tensor, double mean, double stddev, Generator& generator) {
  Tensor target = tensor;
  target.copy_(Tensor::normal(tensor.shape(), mean, stddev, generator, Device::cpu(), tensor.dtype()));
}

void constant_(const Tensor& tensor, double value) {
  Tensor target = tensor;
  target.copy_(Tensor::full(tensor.shape(), value, Device::cpu(), tensor.dtype()));
}

}  // namespace pixgrad::nn::init
