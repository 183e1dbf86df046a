// Activation modules, thin wrappers over the ops of the same names.
#pragma once

#include <pixgrad/layers/module.h>

namespace pixgrad::nn {

class ReLU : public Module {
 public:
  ReLU() : Module("ReLU") {}
  Tensor forward(const Tensor& input) override;
};

class LeakyReLU : public Module {
 public:
  explicit LeakyReLU(double slope = 0.01) : Module("LeakyReLU"), negative_slope(slope) {}
  Tensor forward(const Tensor& input) override;

  double negative_slope;
};

class Tanh : public Module {
 public:
  Tanh() : Module("Tanh") {}
  Tensor forward(const Tensor& input) override;
};

class Sigmoid : public Module {
 public:
  Sigmoid() : Module("Sigmoid") {}
  Tensor forward(const Tensor& input) override;
};

}  // namespace pixgrad::nn
