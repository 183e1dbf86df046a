// The training step as one CUDA graph (models/graphed_step.h): N replayed
// steps equal N eager steps on the GPU bit for bit (losses, parameters,
// optimiser state, running statistics, generator); the batch comes from the
// host or the device; a step that waits for the device cannot be captured;
// and the graph's memory is its own.
#include <catch2/catch.hpp>

#include "../graph_replay_case.h"
#include "../precision_scope.h"
#include "cuda_testing.h"
#include <pixgrad/core/cuda_graph.h>
#include <pixgrad/core/cuda_info.h>
#include <pixgrad/core/ops.h>

using namespace pixgrad;
using namespace pixgrad::cuda_testing;
using Catch::Matchers::Contains;

TEST_CASE("replayed CUDA graph steps equal eager CUDA steps bit for bit, both presets", "[cuda][graph]") {
  const Shape batch{1, 3, 64, 64}, wide{1, 3, 64, 128};
  for (const models::Preset preset : {models::Preset::Paper, models::Preset::Chainer}) {
    SECTION(models::to_string(preset)) {
      // Warm-up, capture, replays (one batch of another shape between them,
      // run eagerly), and the learning rate changed twice.
      const auto batches = testing::replay_batches({batch, batch, batch, wide, batch, batch});
      const std::vector<double> lr{2e-4, 2e-4, 2e-4, 2e-4, 1e-4, 5e-5};
      const testing::ReplayRun eager = testing::run_replay_case(preset, kGpu, false, batches, lr);
      const testing::ReplayRun graphed = testing::run_replay_case(preset, kGpu, true, batches, lr);
      testing::require_same_runs(eager, graphed);
    }
  }
}

// The tensor-core convolutions (cp.async pipelines, their own shared-memory
// sizes) inside a graph, at the paper preset's full size: 256x256, 64
// filters, 8 levels.
TEST_CASE("replayed CUDA graph steps equal eager ones at every precision, paper preset at full size",
          "[cuda][graph][precision]") {
  const Shape batch{1, 3, 256, 256};
  for (const kernels::ConvPrecision precision :
       {kernels::ConvPrecision::Fp32, kernels::ConvPrecision::Tf32, kernels::ConvPrecision::Tf32x3,
        kernels::ConvPrecision::Bf16}) {
    SECTION(kernels::to_string(precision)) {
      const testing::PrecisionScope scope(precision);
      const auto batches = testing::replay_batches({batch, batch, batch, batch});
      const std::vector<double> lr(batches.size(), 2e-4);
      const models::Pix2PixOptions full = models::Pix2PixOptions::for_preset(models::Preset::Paper, 3, 3);
      const testing::ReplayRun eager = testing::run_replay_case(full, kGpu, false, batches, lr);
      const testing::ReplayRun graphed = testing::run_replay_case(full, kGpu, true, batches, lr);
      testing::require_same_runs(eager, graphed);
    }
  }
}

TEST_CASE("a CUDA graph step takes its batch from the device as well, and counts its nodes", "[cuda][graph]") {
  manual_seed(5);
  models::Pix2Pix model(testing::small_replay_options(models::Preset::Paper));
  model.to(kGpu);
  models::GraphedTrainStep step(model);
  const auto batches = testing::replay_batches({{1, 3, 64, 64}, {1, 3, 64, 64}, {1, 3, 64, 64}});
  for (const auto& [input, target] : batches) (void)step.step(input.to(kGpu), target.to(kGpu));
  const std::optional<models::StepLosses> last = step.finish();
  REQUIRE(last.has_value());
  CHECK(last->finite());
  CHECK(step.captured());
  INFO("graph nodes: " << step.graph_nodes());
  CHECK(step.graph_nodes() > 10);
}

TEST_CASE("a capture refuses to wait for the device, and a graph's memory is its own", "[cuda][graph]") {
  const Tensor x = random_tensor({256}, 31).to(kGpu);
  {
    CudaGraph graph(kGpu);
    CHECK_THROWS_WITH(graph.capture([&] { (void)sum(x).to(Device::cpu()); }), Contains("captured"));
  }
  // Memory freed inside a capture is not handed out again while the graph lives.
  CudaGraph graph(kGpu);
  void* inside = nullptr;
  graph.capture([&] {
    const Tensor y = mul(x, 2.0);
    inside = y.raw_data();
  });
  const Tensor after = Tensor::empty({256}, kGpu);
  CHECK(after.raw_data() != inside);
  graph.launch();
  synchronize(kGpu);
}
