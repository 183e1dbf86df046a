// A whole pix2pix training step on CUDA against the same step on the CPU, for
// both presets; the caching allocator's steady state over later steps; and the
// error for a device that is not there.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <utility>

#include "compare.h"
#include "core/cuda_info.h"
#include "core/error.h"
#include "core/generator.h"
#include "models/pix2pix.h"

using namespace pixgrad;
using namespace pixgrad::cuda_testing;
using Catch::Matchers::Contains;

namespace {

// A step chains ~40 layers forward and back, batch norm over as few as 8
// values per channel, and one Adam update of at most lr = 2e-4 per weight.
// Float rounding differences grow through that chain to ~1e-5; 1e-3 is far
// above that but below what a wrong kernel, mask or update order gives (and
// an Adam update that went the other way moves a weight by 4e-4).
constexpr double kTolerance = 1e-3;

// Small versions of the presets: 32x32 images down to 1x1 (paper) or 2x2
// (chainer, whose innermost level is normalised), as in the CPU training tests.
models::Pix2PixOptions small_options(models::Preset preset) {
  models::Pix2PixOptions options = models::Pix2PixOptions::for_preset(preset, 3, 3);
  options.generator.ngf = 8;
  options.generator.num_downs = preset == models::Preset::Paper ? 5 : 4;
  options.discriminator.ndf = 8;
  return options;
}

void check_losses(const models::StepLosses& gpu, const models::StepLosses& cpu) {
  const std::pair<const char*, double models::StepLosses::*> fields[] = {
      {"g_total", &models::StepLosses::g_total}, {"g_adv", &models::StepLosses::g_adv},
      {"g_l1", &models::StepLosses::g_l1},       {"d_total", &models::StepLosses::d_total},
      {"d_real", &models::StepLosses::d_real},   {"d_fake", &models::StepLosses::d_fake},
  };
  for (const auto& [name, field] : fields) {
    INFO(name << ": cpu " << cpu.*field << ", cuda " << gpu.*field);
    CHECK(std::isfinite(gpu.*field));
    CHECK(std::abs(gpu.*field - cpu.*field) / std::max(1.0, std::abs(cpu.*field)) < kTolerance);
  }
}

// Every entry of two state dicts (G, D and both optimisers), `tolerance` 0
// meaning bit for bit.
void check_states(const std::map<std::string, Tensor>& gpu, const std::map<std::string, Tensor>& cpu,
                  double tolerance) {
  REQUIRE(gpu.size() == cpu.size());
  for (const auto& [name, expected] : cpu) {
    INFO(name);
    REQUIRE(gpu.count(name) == 1);
    if (tolerance == 0)
      CHECK(count_unequal(gpu.at(name), expected) == 0);
    else
      CHECK(relative_error(gpu.at(name), expected) < tolerance);
  }
}

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

TEST_CASE("a pix2pix training step on CUDA matches the CPU step, and later steps allocate nothing",
          "[cuda][pix2pix]") {
  for (const models::Preset preset : {models::Preset::Paper, models::Preset::Chainer}) {
    INFO(models::to_string(preset) << " preset");
    const models::Pix2PixOptions options = small_options(preset);
    manual_seed(21);
    models::Pix2Pix on_cpu(options);
    manual_seed(21);
    models::Pix2Pix on_gpu(options);
    on_gpu.to(kGpu);
    REQUIRE(on_gpu.device() == kGpu);
    check_states(on_gpu.state_dict(), on_cpu.state_dict(), 0);

    const Tensor input = random_tensor({2, 3, 32, 32}, 8001), target = random_tensor({2, 3, 32, 32}, 8002);
    const Tensor gpu_input = input.to(kGpu), gpu_target = target.to(kGpu);

    // Both steps start from the same generator state, so dropout (chainer's
    // decoder) draws the same masks.
    const Generator start = default_generator();
    const models::StepLosses cpu_losses = on_cpu.train_step(input, target);
    const uint64_t cpu_end = default_generator().offset();
    default_generator().set_state(start.seed(), start.offset());
    const models::StepLosses gpu_losses = on_gpu.train_step(gpu_input, gpu_target);
    CHECK(default_generator().offset() == cpu_end);
    check_losses(gpu_losses, cpu_losses);
    check_states(on_gpu.state_dict(), on_cpu.state_dict(), kTolerance);

    // Steady state: after two steps every block a step needs is cached.
    on_gpu.train_step(gpu_input, gpu_target);
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

  models::Pix2Pix model(small_options(models::Preset::Paper));
  const std::string model_error = error_message([&] { model.to(missing); });
  CHECK_THAT(model_error, Contains(name));
  CHECK(model_error.find('\n') == std::string::npos);
}
