// Adam and SGD updating CUDA parameters against the same optimisers on CPU
// copies: five steps, a fresh random gradient each, one parameter skipped on
// some steps; parameters and optimiser state compared afterwards. Then Adam's
// one launch for every parameter against one launch each, to the bit, on
// views that start off the 16-byte boundary.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "cuda_testing.h"
#include <pixgrad/kernels/multi_tensor_adam.h>
#include <pixgrad/optim/optimizer.h>

using namespace pixgrad;
using namespace pixgrad::cuda_testing;

namespace {

// Compared with kOptimizerTolerance (tests/compare.h), element by element;
// tests/test_compare.cpp shows that a wrong sign, moment or epsilon placement
// in the reference fails it.
constexpr int kSteps = 5;

const std::vector<Shape> kShapes{{1}, {7}, {3, 5, 7, 11}, {1000003}};

// Runs kSteps steps of the optimiser built by `make` on CPU and CUDA copies of
// the same parameters with the same gradients, then compares them and the
// optimisers' state (step counts, moments, momentum buffers).
template <typename Optimizer, typename Options>
void check_steps(const Options& options) {
  std::vector<Tensor> on_cpu, on_gpu;
  for (size_t i = 0; i < kShapes.size(); ++i) {
    const Tensor values = random_tensor(kShapes[i], 7000 + i);
    on_cpu.push_back(leaf_on(values, Device::cpu()));
    on_gpu.push_back(leaf_on(values, kGpu));
  }
  Optimizer cpu_optimizer(on_cpu, options), gpu_optimizer(on_gpu, options);
  for (int step = 1; step <= kSteps; ++step) {
    for (size_t i = 0; i < kShapes.size(); ++i) {
      // Parameter 1 gets no gradient on even steps: it is skipped and its
      // step count lags behind.
      if (i == 1 && step % 2 == 0) {
        on_cpu[i].zero_grad();
        on_gpu[i].zero_grad();
        continue;
      }
      // Gradients of mixed magnitudes, so that eps matters for some elements.
      const double scale = step % 2 == 0 ? 1e-3 : 1.0;
      const Tensor grad = random_tensor(kShapes[i], 7100 + 10 * static_cast<uint64_t>(step) + i, -scale, scale);
      on_cpu[i].set_grad(grad);
      on_gpu[i].set_grad(grad.to(kGpu));
    }
    cpu_optimizer.step();
    gpu_optimizer.step();
  }
  for (size_t i = 0; i < kShapes.size(); ++i) {
    INFO("parameter " << i << " " << shape_str(kShapes[i]));
    CHECK(on_gpu[i].is_cuda());
    CHECK(on_gpu[i].is_leaf());
    PIXGRAD_CHECK_CLOSE(on_gpu[i], on_cpu[i], kOptimizerTolerance);
  }
  const std::map<std::string, Tensor> cpu_state = cpu_optimizer.state_dict("opt.");
  const std::map<std::string, Tensor> gpu_state = gpu_optimizer.state_dict("opt.");
  REQUIRE(gpu_state.size() == cpu_state.size());
  for (const auto& [name, expected] : cpu_state) {
    INFO(name);
    REQUIRE(gpu_state.count(name) == 1);
    PIXGRAD_CHECK_CLOSE(gpu_state.at(name), expected, kOptimizerTolerance);
  }
}

constexpr int64_t kChunk = kernels::kAdamChunk;

// Sizes around a block's chunk and a pack, each with the float offset of its
// view into a device block: the odd offsets leave the parameters and their
// gradients off the 16-byte boundary (the moments, the optimiser's own, are
// aligned), so those tensors go one float at a time.
const std::vector<std::pair<int64_t, int64_t>> kViews = {
    {1, 1}, {3, 0}, {7, 3}, {kChunk - 1, 1}, {kChunk + 5, 0}, {2 * kChunk + 3, 3}, {100003, 1}};

// Random values in [-scale, scale) in views laid out as kViews says.
std::vector<Tensor> device_views(uint64_t seed, double scale) {
  std::vector<Tensor> views;
  for (size_t i = 0; i < kViews.size(); ++i) {
    const auto [n, offset] = kViews[i];
    views.push_back(unaligned_copy(random_tensor({n}, seed + i, -scale, scale), kGpu, offset));
    REQUIRE(reinterpret_cast<uintptr_t>(views.back().raw_data()) % 16 == static_cast<uintptr_t>(4 * offset));
  }
  return views;
}

std::vector<Tensor> device_parameters(uint64_t seed) {
  std::vector<Tensor> parameters = device_views(seed, 1.0);
  for (Tensor& parameter : parameters) parameter.set_requires_grad();
  return parameters;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  const Tensor x = a.to(Device::cpu()), y = b.to(Device::cpu());
  return x.dtype() == y.dtype() && x.shape() == y.shape() && std::memcmp(x.raw_data(), y.raw_data(), x.nbytes()) == 0;
}

}  // namespace

TEST_CASE("Adam on CUDA matches the CPU for both epsilon placements, with and without weight decay",
          "[cuda][optim][adam]") {
  for (const auto placement : {optim::EpsilonPlacement::PyTorch, optim::EpsilonPlacement::Chainer}) {
    for (const double weight_decay : {0.0, 0.1}) {
      for (const double eps : {1e-8, 1e-3}) {
        const optim::AdamOptions options =
            optim::AdamOptions(0.01).beta1(0.5).beta2(0.999).eps(eps).weight_decay(weight_decay).placement(placement);
        INFO((placement == optim::EpsilonPlacement::PyTorch ? "PyTorch" : "Chainer")
             << " epsilon placement, weight_decay " << weight_decay << ", eps " << eps);
        check_steps<optim::Adam>(options);
      }
    }
  }
}

TEST_CASE("SGD on CUDA matches the CPU, with and without momentum", "[cuda][optim][sgd]") {
  for (const double momentum : {0.0, 0.9}) {
    for (const double weight_decay : {0.0, 0.01}) {
      INFO("momentum " << momentum << ", weight_decay " << weight_decay);
      check_steps<optim::SGD>(optim::SGDOptions(0.05).momentum(momentum).weight_decay(weight_decay));
    }
  }
}

TEST_CASE("Adam and SGD on CUDA flag a non-finite gradient as the CPU does, and only then", "[cuda][optim][nan]") {
  for (const bool poisoned : {false, true}) {
    INFO((poisoned ? "one gradient element NaN, one infinite" : "finite gradients"));
    std::vector<Tensor> on_cpu, on_gpu;
    for (size_t i = 0; i < kShapes.size(); ++i) {
      const Tensor values = random_tensor(kShapes[i], 7200 + i);
      on_cpu.push_back(leaf_on(values, Device::cpu()));
      on_gpu.push_back(leaf_on(values, kGpu));
      std::vector<float> grad = random_tensor(kShapes[i], 7300 + i).to_vector();
      if (poisoned && i == 3) {
        grad[12345] = std::nanf("");
        grad[999999] = INFINITY;
      }
      on_cpu[i].set_grad(Tensor::from_vector(grad, kShapes[i]));
      on_gpu[i].set_grad(Tensor::from_vector(grad, kShapes[i]).to(kGpu));
    }
    optim::Adam adam_cpu(on_cpu), adam_gpu(on_gpu);
    adam_cpu.step();
    adam_gpu.step();
    CHECK(adam_gpu.nonfinite_gradients().is_cuda());
    CHECK(adam_cpu.nonfinite_gradients().item() == (poisoned ? 1 : 0));
    CHECK(adam_gpu.nonfinite_gradients().item() == (poisoned ? 1 : 0));
    optim::SGD sgd_cpu(on_cpu, optim::SGDOptions(0.01).momentum(0.9)), sgd_gpu(on_gpu, optim::SGDOptions(0.01).momentum(0.9));
    sgd_cpu.step();
    sgd_gpu.step();
    CHECK(sgd_cpu.nonfinite_gradients().item() == (poisoned ? 1 : 0));
    CHECK(sgd_gpu.nonfinite_gradients().item() == (poisoned ? 1 : 0));
  }
}

TEST_CASE("one Adam launch for every parameter gives the bits of one launch each, on odd sizes and unaligned views",
          "[cuda][optim][adam][multi_tensor]") {
  for (const auto placement : {optim::EpsilonPlacement::PyTorch, optim::EpsilonPlacement::Chainer}) {
    INFO((placement == optim::EpsilonPlacement::PyTorch ? "PyTorch" : "Chainer") << " epsilon placement");
    const optim::AdamOptions options = optim::AdamOptions(0.01).beta1(0.5).weight_decay(0.1).placement(placement);
    const std::vector<Tensor> together = device_parameters(7400), apart = device_parameters(7400);
    optim::Adam one_launch(together, options), launch_each(apart, options);
    launch_each.set_single_launch(false);
    for (int step = 1; step <= 4; ++step) {
      // Every parameter has a gradient at every step, so the step counts
      // agree and one_launch takes its single launch.
      const double scale = step % 2 == 0 ? 1e-4 : 1.0;  // small ones, so that eps matters
      const std::vector<Tensor> grads = device_views(7500 + 100 * static_cast<uint64_t>(step), scale);
      for (size_t i = 0; i < kViews.size(); ++i) {
        together[i].set_grad(grads[i]);
        apart[i].set_grad(grads[i]);
      }
      one_launch.step();
      launch_each.step();
    }
    for (size_t i = 0; i < kViews.size(); ++i) {
      INFO("parameter " << i << ": " << kViews[i].first << " elements at float offset " << kViews[i].second);
      CHECK(same_bits(together[i], apart[i]));
    }
    const std::map<std::string, Tensor> expected = launch_each.state_dict("");
    for (const auto& [name, tensor] : one_launch.state_dict("")) {
      INFO(name);
      CHECK(same_bits(tensor, expected.at(name)));
    }
  }
}

TEST_CASE("a NaN in the last element of a gradient, unaligned or past the last pack, raises Adam's flag",
          "[cuda][optim][adam][nan][multi_tensor]") {
  // kViews[5] starts 3 floats off the boundary; kViews[4] is aligned, and its
  // last element comes after its last whole pack of four.
  for (const size_t poisoned : {size_t{5}, size_t{4}, kViews.size()}) {
    for (const bool single_launch : {true, false}) {
      INFO((poisoned < kViews.size() ? "NaN at the end of gradient " + std::to_string(poisoned) : "finite gradients")
           << (single_launch ? ", one launch" : ", one launch each"));
      const std::vector<Tensor> parameters = device_parameters(7600);
      optim::Adam adam(parameters);
      adam.set_single_launch(single_launch);
      for (size_t i = 0; i < kViews.size(); ++i) {
        const auto [n, offset] = kViews[i];
        std::vector<float> grad = random_tensor({n}, 7700 + i).to_vector();
        if (i == poisoned) grad.back() = std::nanf("");
        parameters[i].set_grad(unaligned_copy(Tensor::from_vector(grad, {n}), kGpu, offset));
      }
      adam.step();
      CHECK(adam.nonfinite_gradients().item() == (poisoned < kViews.size() ? 1 : 0));
    }
  }
}
