// Adam and SGD updating CUDA parameters against the same optimisers on CPU
// copies: five steps, a fresh random gradient each, one parameter skipped on
// some steps; parameters and optimiser state compared afterwards.
#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "cuda_testing.h"
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
