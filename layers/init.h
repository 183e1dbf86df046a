// In-place (re)initialisation of parameters, as torch::nn::init. Draws come
// from a Philox generator, so seeding it makes a model reproducible.
#pragma once

#include <pixgrad/core/generator.h>
#include <pixgrad/core/tensor.h>

namespace pixgrad::nn::init {

// Fills `tensor` with Normal(mean, stddev) draws.
void normal_(const Tensor& tensor, double mean, double stddev, Generator& generator = default_generator());
void constant_(const Tensor& tensor, double value);
inline void zeros_(const Tensor& tensor) { constant_(tensor, 0.0); }
inline void ones_(const Tensor& tensor) { constant_(tensor, 1.0); }

}  // namespace pixgrad::nn::init
