// A whole pix2pix training step on CUDA against the same step on the CPU, for
// both presets: every G and D parameter gradient as the optimisers receive
// it, element by element (the optimisers are compared on their own in
// test_cuda_optim.cpp); then real steps: losses, running statistics, and the
// caching allocator's steady state. Last, the error for a device that is not
// there.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>

#include "../step_gradients.h"
#include "cuda_testing.h"
#include <pixgrad/core/cuda_info.h>
#include <pixgrad/core/error.h>
#include <pixgrad/core/generator.h>
#include <pixgrad/models/pix2pix.h>

using namespace pixgrad;
using namespace pixgrad::cuda_testing;
using Catch::Matchers::Contains;

namespace {

// The message of what `action` throws ("" if it does not throw).
template <typename Action>
std::string error_message(Action&& action) {
  try {
    action();
  } catch (const std::exception& error) {
    return error.what();
  }
  return "";
}

}  // namespace

TEST_CASE("a pix2pix step on CUDA computes the CPU step's gradients for every G and D parameter",
          "[cuda][pix2pix]") {
  for (const models::Preset preset : {models::Preset::Paper, models::Preset::Chainer}) {
    INFO(models::to_string(preset) << " preset");
    const models::Pix2PixOptions options = small_step_options(preset, /*lr=*/0);
    manual_seed(21);
    models::Pix2Pix on_cpu(options);
    manual_seed(21);
    models::Pix2Pix on_gpu(options);
    on_gpu.to(kGpu);
    REQUIRE(on_gpu.device() == kGpu);

    const Tensor input = random_tensor({2, 3, 32, 32}, 8001), target = random_tensor({2, 3, 32, 32}, 8002);
    // Both steps start from the same generator state, so dropout draws the same masks.
    const Generator start = default_generator();
    const StepGradients cpu = capture_step(on_cpu, input, target);
    const uint64_t cpu_end = default_generator().offset();
    default_generator().set_state(start.seed(), start.offset());
    const StepGradients gpu = capture_step(on_gpu, input.to(kGpu), target.to(kGpu));
    CHECK(default_generator().offset() == cpu_end);

    REQUIRE(cpu.gradients.size() == on_cpu.generator().parameters().size() +
                                        on_cpu.discriminator().parameters().size());
    const std::map<std::string, std::string> failures = mismatched_gradients(gpu, cpu, kStepTolerance);
    for (const auto& [name, why] : failures) UNSCOPED_INFO(name << ": " << why);
    CHECK(failures.empty());
    const Comparison losses = compare_losses(gpu.losses, cpu.losses, kStepTolerance);
    INFO("losses: " << losses.describe());
    CHECK(losses.passed());
  }
}

TEST_CASE("pix2pix training steps on CUDA give the CPU's losses and running statistics, and later steps "
          "allocate nothing",
          "[cuda][pix2pix]") {
  for (const models::Preset preset : {models::Preset::Paper, models::Preset::Chainer}) {
    INFO(models::to_string(preset) << " preset");
    const models::Pix2PixOptions options = small_step_options(preset, /*lr=*/2e-4);
    manual_seed(21);
    models::Pix2Pix on_cpu(options);
    manual_seed(21);
    models::Pix2Pix on_gpu(options);
    on_gpu.to(kGpu);

    const Tensor input = random_tensor({2, 3, 32, 32}, 8101), target = random_tensor({2, 3, 32, 32}, 8102);
    const Tensor gpu_input = input.to(kGpu), gpu_target = target.to(kGpu);
    // Two steps: the second runs on weights the first one updated.
    for (int step = 0; step < 2; ++step) {
      INFO("step " << step);
      const Generator start = default_generator();
      const models::StepLosses cpu_losses = on_cpu.train_step(input, target);
      default_generator().set_state(start.seed(), start.offset());
      const models::StepLosses gpu_losses = on_gpu.train_step(gpu_input, gpu_target);
      const Comparison losses = compare_losses(gpu_losses, cpu_losses, kStepTolerance);
      INFO("losses: " << losses.describe());
      CHECK(losses.passed());
      if (step > 0) continue;
      // After the first step the running statistics are means and variances
      // of activations (of the initial weights, and for the paper preset's D
      // once more after its update): compared per element.
      const std::map<std::string, Tensor> cpu_state = on_cpu.state_dict(), gpu_state = on_gpu.state_dict();
      REQUIRE(cpu_state.size() == gpu_state.size());
      for (const auto& [name, expected] : cpu_state) {
        if (name.find("running_") == std::string::npos) continue;
        INFO(name);
        PIXGRAD_CHECK_CLOSE(gpu_state.at(name), expected, kStepTolerance);
      }
    }

    // Steady state: after two steps every block a step needs is cached.
    synchronize(kGpu);
    const CudaMemoryStats warm = cuda_memory_stats(kGpu.index());
    for (int step = 0; step < 2; ++step) {
      const models::StepLosses losses = on_gpu.train_step(gpu_input, gpu_target);
      CHECK(std::isfinite(losses.g_total));
      CHECK(std::isfinite(losses.d_total));
    }
    synchronize(kGpu);
    const CudaMemoryStats steady = cuda_memory_stats(kGpu.index());
    CHECK(steady.device_mallocs == warm.device_mallocs);
    CHECK(steady.device_frees == warm.device_frees);
  }
}

TEST_CASE("a CUDA device that is not there gives a one-line error naming it", "[cuda][errors]") {
  // cuda:7, or the first index past the devices of a machine with eight or more.
  const Device missing = Device::parse("cuda:" + std::to_string(std::max(7, cuda_device_count())));
  const std::string name = missing.str();

  const std::string tensor_error = error_message([&] { Tensor::zeros({2, 3}, missing); });
  CHECK_THAT(tensor_error, Contains(name));
  CHECK(tensor_error.find('\n') == std::string::npos);

  const std::string copy_error = error_message([&] { Tensor::ones({2, 3}).to(missing); });
  CHECK_THAT(copy_error, Contains(name));
  CHECK(copy_error.find('\n') == std::string::npos);

  models::Pix2Pix model(small_step_options(models::Preset::Paper));
  const std::string model_error = error_message([&] { model.to(missing); });
  CHECK_THAT(model_error, Contains(name));
  CHECK(model_error.find('\n') == std::string::npos);
}

TEST_CASE("a pix2pix step on CUDA reports a non-finite gradient with its losses", "[cuda][pix2pix][nan]") {
  manual_seed(21);
  models::Pix2Pix model(small_step_options(models::Preset::Paper, /*lr=*/2e-4));
  model.to(kGpu);
  const Tensor input = random_tensor({1, 3, 32, 32}, 8201).to(kGpu), target = random_tensor({1, 3, 32, 32}, 8202).to(kGpu);
  CHECK(model.train_step(input, target).finite());
  model.set_before_update([](models::Network network, nn::Module& module) {
    if (network == models::Network::Generator) fill_(module.named_parameters().front().second.grad(), std::nan(""));
  });
  const models::StepLosses losses = model.train_step(input, target);
  model.set_before_update({});
  CHECK_FALSE(losses.g_gradients_finite);
  CHECK(losses.d_gradients_finite);
  CHECK_FALSE(losses.finite());
  CHECK_THAT(losses.describe_nonfinite(), Contains("G's gradients"));
}
