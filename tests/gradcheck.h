// Test helpers: random inputs and gradient checking by central differences.
#pragma once

#include <functional>
#include <vector>

#include <pixgrad/core/tensor.h>

namespace pixgrad::testing {

// Uniform in [low, high) from a private generator, so tests do not disturb
// each other's random streams.
Tensor random_tensor(const Shape& shape, uint64_t seed, DType dtype = DType::Float64, double low = -1, double high = 1);

// Compares the autograd gradient of sum(f(inputs) * R), R a fixed random
// tensor, with central differences (double precision), for every element of
// every input that requires grad. Inputs must be float64 leaves.
void check_gradients(const std::function<Tensor(const std::vector<Tensor>&)>& f, const std::vector<Tensor>& inputs,
                     double eps = 1e-5, double tolerance = 1e-6);

// Second order: with g_i the gradient of sum(f(inputs) * R) with respect to
// input i, computed with create_graph, compares the autograd gradient of
// h = sum_i sum(g_i * S_i) (S_i fixed random tensors) with central
// differences of h. This is what a gradient penalty's backward does.
void check_second_order_gradients(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                                  const std::vector<Tensor>& inputs, double eps = 1e-5, double tolerance = 1e-6);

// max |a - b| / max(1, max |b|)
double max_relative_error(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace pixgrad::testing
