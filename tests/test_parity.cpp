// Numerical parity with PyTorch on the CPU: every op family, both presets'
// forward pass, losses and gradients, and three full training iterations,
// against the fixtures of tools/reference/make_fixtures.py (see tests/parity.h
// for the error measure and docs/parity.md for the measured errors).
#include <catch2/catch.hpp>

#include "tests/parity.h"

using namespace pixgrad;

TEST_CASE("parity: ops match PyTorch on the CPU", "[parity]") { parity::check_ops(Device::cpu(), "ops, cpu"); }

TEST_CASE("parity: paper preset forward, losses and gradients match PyTorch on the CPU", "[parity]") {
  parity::check_forward_backward("paper.safetensors", Device::cpu(), "paper forward/backward, cpu");
}

TEST_CASE("parity: paper preset after three iterations matches PyTorch on the CPU", "[parity]") {
  parity::check_three_steps("paper.safetensors", Device::cpu(), "paper three iterations, cpu");
}

TEST_CASE("parity: chainer preset forward, losses and gradients match PyTorch on the CPU", "[parity]") {
  parity::check_forward_backward("chainer.safetensors", Device::cpu(), "chainer forward/backward, cpu");
}

TEST_CASE("parity: chainer preset after three iterations matches PyTorch on the CPU", "[parity]") {
  parity::check_three_steps("chainer.safetensors", Device::cpu(), "chainer three iterations, cpu");
}
