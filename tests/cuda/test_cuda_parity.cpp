// Numerical parity with PyTorch on CUDA: the comparisons of tests/test_parity.cpp
// (same fixtures, same error measure and limits, tests/parity.h) with every
// op, forward pass, backward pass and Adam step running on the GPU.
#include <catch2/catch.hpp>

#include "tests/parity.h"

using namespace pixgrad;

namespace {
constexpr Device kGpu = Device::cuda(0);
}  // namespace

TEST_CASE("parity: ops match PyTorch on CUDA", "[parity]") { parity::check_ops(kGpu, "ops, cuda"); }

TEST_CASE("parity: paper preset forward, losses and gradients match PyTorch on CUDA", "[parity]") {
  parity::check_forward_backward("paper.safetensors", kGpu, "paper forward/backward, cuda");
}

TEST_CASE("parity: paper preset after three iterations matches PyTorch on CUDA", "[parity]") {
  parity::check_three_steps("paper.safetensors", kGpu, "paper three iterations, cuda");
}

TEST_CASE("parity: chainer preset forward, losses and gradients match PyTorch on CUDA", "[parity]") {
  parity::check_forward_backward("chainer.safetensors", kGpu, "chainer forward/backward, cuda");
}

TEST_CASE("parity: chainer preset after three iterations matches PyTorch on CUDA", "[parity]") {
  parity::check_three_steps("chainer.safetensors", kGpu, "chainer three iterations, cuda");
}
