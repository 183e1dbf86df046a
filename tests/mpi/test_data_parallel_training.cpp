// Data-parallel training is the same computation as one process with the
// whole batch: two ranks of batch 1 against one process of batch 2 on the
// same facades, for norms whose statistics do not span the batch (none,
// instance) and for batch norm synchronised across the ranks. Dropout is
// off: each rank draws its own masks, so with dropout the runs agree only
// in distribution.
//
// Compared: the gradients of the first step (as the optimisers receive
// them), which a wrong reduction changes at once, and the parameters after
// a few steps, which a reduction that goes wrong later changes. Adam is
// blind to the scale of a gradient, so a sum in place of a mean barely
// moves the parameters; the gradients catch it. The reduction itself is
// also replaced by wrong ones (a sum, rank 1's part dropped from the first
// step or only from the second on) to show that each comparison fails then.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <pixgrad/core/ops.h>
#include <pixgrad/training/checkpoint.h>
#include <pixgrad/training/trainer.h>

#include "mpi_world.h"
#include "tests/tiny_run.h"

using namespace pixgrad;

namespace {

using Gradients = std::map<std::string, std::vector<float>>;

struct Outcome {
  Gradients gradients;                  // every parameter's gradient as the optimiser got it, at one step
  std::map<std::string, Tensor> final;  // the checkpoint's parameters (rank 0 only)
};

// A wrong reduction, to show that the tests notice one.
class WrongReduction final : public distributed::Communicator {
 public:
  enum class Fault { SumNotMean, RankOneDropped, RankOneDroppedAfterFirstStep };
  WrongReduction(std::shared_ptr<distributed::Communicator> inner, Fault fault)
      : inner_(std::move(inner)), fault_(fault) {}
  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }
  int local_rank() const override { return inner_->local_rank(); }
  std::string backend() const override { return "wrong " + inner_->backend(); }
  void all_reduce(Tensor& tensor, distributed::ReduceOp op, const std::string& what) override {
    const bool drop = fault_ == Fault::RankOneDropped || (fault_ == Fault::RankOneDroppedAfterFirstStep && steps_ > 0);
    if (drop && rank() == 1) tensor.copy_(Tensor::zeros_like(tensor));
    inner_->all_reduce(tensor, op, what);
    if (fault_ == Fault::SumNotMean) tensor.copy_(mul(tensor, static_cast<double>(size())));
  }
  void all_reduce(std::vector<double>& values, distributed::ReduceOp op, const std::string& what) override {
    inner_->all_reduce(values, op, what);
    if (what == "the step's losses") ++steps_;  // the trainer combines the losses once after each step
  }
  void barrier(const std::string& what) override { inner_->barrier(what); }

 private:
  std::shared_ptr<distributed::Communicator> inner_;
  Fault fault_;
  int steps_ = 0;  // steps completed
};

// Rank 0 alone empties the folder: it is the one that writes there.
training::TrainConfig small_run(const std::string& norm, bool sync_bn, int batch, const std::string& folder,
                                const std::string& dataset = testing::facades_root()) {
  const auto output = testing::mpi_world().is_root()
                          ? testing::fresh_folder(folder)
                          : std::filesystem::temp_directory_path() / ("pixgrad_test_" + folder);
  training::TrainConfig config = testing::tiny_config("paper", output, dataset);
  config.norm = norm;
  config.sync_bn = sync_bn;
  config.no_dropout = true;
  config.batch_size = batch;
  config.max_iterations = 3;
  config.preview_count = 0;
  config.save_epoch_freq = 0;
  return config;
}

// Trains; keeps the gradients of step `step` (counted from 1).
Outcome train(const training::TrainConfig& config, std::shared_ptr<distributed::Communicator> world, int step = 1) {
  Outcome outcome;
  training::Trainer trainer(config, "", {}, false, world);
  int updates = 0;
  trainer.model().set_before_update([&](models::Network network, nn::Module& module) {
    if (updates++ / 2 + 1 != step) return;  // two updates per step, D's and G's
    const std::string prefix = network == models::Network::Generator ? "G." : "D.";
    for (const auto& [name, parameter] : module.named_parameters())
      if (parameter.grad().defined()) outcome.gradients[prefix + name] = parameter.grad().to_vector();
  });
  trainer.run();
  if (world->is_root()) {
    for (const auto& [name, tensor] : training::load_checkpoint(config.output + "/checkpoint.safetensors").tensors)
      if (name.rfind("G.", 0) == 0 || name.rfind("D.", 0) == 0) outcome.final.emplace(name, tensor);
  }
  return outcome;
}

// Bounds. Gradients: the ranks' sums are reordered float sums over a few
// thousand terms: relative errors near 1e-6 (measured: 2e-6 at most), and
// cancelling sums off by about 1e-8 (see gradient_difference).
constexpr double kGradientBound = 1e-4;
constexpr double kGradientFloor = 1e-7;
// Parameters after 3 Adam steps (learning rate 2e-4). Adam divides each
// gradient by its own running magnitude, so where the gradients differ by
// rounding only, the steps differ by little: measured 3e-8 (--norm none),
// 2e-7 (batch, --sync-bn) and 2.3e-6 (instance) at most. A tensor whose
// gradient is itself rounding noise (a convolution's bias ahead of instance
// norm, which removes the mean) is the exception: Adam scales noise up to
// whole steps, so its elements may move up to lr either way per step (1.5 lr
// while the magnitude swings), and they are held to that bound instead.
constexpr double kParameterBound = 1e-5;
constexpr double kNoiseParameterBound = 3 * 2 * 1.5 * 2e-4;

// The largest magnitude of each network's gradients ('G' and 'D').
std::map<char, double> network_scales(const Gradients& gradients) {
  std::map<char, double> scale;
  for (const auto& [name, values] : gradients)
    for (const float value : values) scale[name[0]] = std::max(scale[name[0]], static_cast<double>(std::abs(value)));
  return scale;
}

// How far the gradients are apart, as a multiple of what float rounding
// allows: 1 or less passes. Each element may differ by kGradientBound of
// its tensor's largest magnitude (or of a tenth of its network's, where
// that is more) plus kGradientFloor. The network's scale is there for
// gradients that are mathematically zero and hold rounding noise (a
// convolution's bias ahead of instance norm, which removes the mean); the
// floor for sums that cancel (D's last bias: the mean over fake patches of
// terms near 0.25, less the mean over real ones).
double gradient_difference(const Gradients& got, const Gradients& expected) {
  std::map<char, double> network_scale = network_scales(expected);
  double worst = 0;
  for (const auto& [name, reference] : expected) {
    const auto found = got.find(name);
    if (found == got.end() || found->second.size() != reference.size()) return INFINITY;
    double scale = 0.1 * network_scale[name[0]], difference = 0;
    for (size_t i = 0; i < reference.size(); ++i) {
      scale = std::max(scale, static_cast<double>(std::abs(reference[i])));
      difference = std::max(difference, static_cast<double>(std::abs(found->second[i] - reference[i])));
    }
    worst = std::max(worst, difference / (kGradientBound * scale + kGradientFloor));
  }
  return got.size() == expected.size() ? worst : INFINITY;
}

// Whether a tensor's gradient is rounding noise: a bias (ahead of a norm
// that removes the mean) whose first-step gradient, in the reference, is
// within what gradient_difference allows a mathematically zero gradient.
// Weights are never taken for noise: a small weight gradient (deep layers
// without a norm) is still exact to rounding, and the ranks agree on it.
bool is_noise(const std::string& name, const Gradients& gradients) {
  const auto found = gradients.find(name);
  if (found == gradients.end() || name.size() < 5 || name.compare(name.size() - 5, 5, ".bias") != 0) return false;
  double largest = 0;
  for (const float value : found->second) largest = std::max(largest, static_cast<double>(std::abs(value)));
  return largest <= kGradientBound * 0.1 * network_scales(gradients).at(name[0]) + kGradientFloor;
}

// How far the parameters are apart, as a multiple of their bound: 1 or less
// passes.
double parameter_difference(const Outcome& got, const Outcome& expected, int* noise_tensors = nullptr) {
  double worst = 0;
  int noise = 0;
  for (const auto& [name, reference] : expected.final) {
    const auto found = got.final.find(name);
    if (found == got.final.end() || found->second.numel() != reference.numel()) return INFINITY;
    const bool noisy = is_noise(name, expected.gradients);
    noise += noisy;
    const double bound = noisy ? kNoiseParameterBound : kParameterBound;
    const std::vector<double> a = found->second.to_double_vector(), b = reference.to_double_vector();
    for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]) / bound);
  }
  if (noise_tensors) *noise_tensors = noise;
  return got.final.size() == expected.final.size() ? worst : INFINITY;
}

// The reference: one process, the whole batch; rank 0 runs it while the
// others wait.
Outcome one_process(const training::TrainConfig& config, int step = 1) {
  auto& world = testing::mpi_world();
  Outcome reference;
  if (world.is_root()) reference = train(config, distributed::single_process(), step);
  world.barrier("the single-process reference run");
  return reference;
}


}  // namespace

TEST_CASE("two ranks of batch 1 train as one process of batch 2", "[mpi][training]") {
  auto& world = testing::mpi_world();
  REQUIRE(world.size() == 2);  // every rank sees the same size: no rank skips the collectives below
  for (const auto& [norm, sync_bn] : std::vector<std::pair<std::string, bool>>{
           {"none", false}, {"instance", false}, {"batch", true}}) {
    const std::string name = "dp_" + norm;
    const Outcome reference = one_process(small_run(norm, false, 2, name + "_one"));
    const Outcome ranks = train(small_run(norm, sync_bn, 1, name + "_two"), testing::mpi_world_handle());
    if (world.is_root()) {
      INFO("--norm " << norm << (sync_bn ? " --sync-bn" : ""));
      const double gradients = gradient_difference(ranks.gradients, reference.gradients);
      int noise_tensors = 0;
      const double parameters = parameter_difference(ranks, reference, &noise_tensors);
      WARN("--norm " << norm << ": first-step gradients apart by " << gradients
                     << " of the rounding bound, parameters after 3 steps by " << parameters << " of theirs ("
                     << noise_tensors << " tensors with noise for gradients)");
      CHECK(gradients <= 1);
      CHECK(parameters <= 1);
      // Only instance norm makes gradients that are noise (the biases ahead of it).
      CHECK((norm == "instance") == (noise_tensors > 0));
    }
    world.barrier("the end of a comparison");
  }
}

TEST_CASE("a wrong gradient reduction fails the comparison", "[mpi][training]") {
  auto& world = testing::mpi_world();
  const Outcome reference = one_process(small_run("instance", false, 2, "dp_wrong_one"));
  using Fault = WrongReduction::Fault;
  for (const Fault fault : {Fault::SumNotMean, Fault::RankOneDropped, Fault::RankOneDroppedAfterFirstStep}) {
    auto wrong = std::make_shared<WrongReduction>(testing::mpi_world_handle(), fault);
    const Outcome ranks = train(small_run("instance", false, 1, "dp_wrong_two"), wrong);
    if (world.is_root()) {
      const double gradients = gradient_difference(ranks.gradients, reference.gradients);
      const double parameters = parameter_difference(ranks, reference);
      INFO((fault == Fault::SumNotMean       ? "a sum for the mean"
            : fault == Fault::RankOneDropped ? "rank 1 dropped"
                                             : "rank 1 dropped after the first step")
           << ": first-step gradients apart by " << gradients << " of the rounding bound, parameters by "
           << parameters << " of theirs");
      if (fault == Fault::RankOneDroppedAfterFirstStep) {
        CHECK(gradients <= 1);  // the first step is right: only the parameters can tell
        CHECK(parameters > 10);
      } else {
        CHECK(gradients > 100);
      }
    }
    world.barrier("the end of a wrong reduction");
  }
}

// Seven images, two ranks of batch 2: the epoch's second global batch holds
// three, split 2 and 1, so the ranks' losses must be weighted by their
// shares (2/3 and 1/3) for the mean of their gradients to be the batch's.
TEST_CASE("ranks with unequal shares of a batch weight their gradients by them", "[mpi][training]") {
  auto& world = testing::mpi_world();
  const auto dataset = std::filesystem::temp_directory_path() / "pixgrad_test_dp_seven";
  if (world.is_root()) {
    std::filesystem::remove_all(dataset);
    for (const char* split : {"train", "test"}) std::filesystem::create_directories(dataset / split);
    for (int image = 1; image <= 7; ++image)
      std::filesystem::create_symlink(std::filesystem::absolute(testing::facades_root() + "/train/" +
                                                                std::to_string(image) + ".jpg"),
                                      dataset / "train" / (std::to_string(image) + ".jpg"));
    std::filesystem::create_symlink(std::filesystem::absolute(testing::facades_root() + "/test/1.jpg"),
                                    dataset / "test" / "1.jpg");
  }
  world.barrier("the seven-image dataset");
  training::TrainConfig one = small_run("none", false, 4, "dp_seven_one", dataset.string());
  training::TrainConfig two = small_run("none", false, 2, "dp_seven_two", dataset.string());
  one.max_iterations = two.max_iterations = 2;
  const Outcome reference = one_process(one, 2);
  const Outcome ranks = train(two, testing::mpi_world_handle(), 2);
  if (world.is_root()) {
    const double gradients = gradient_difference(ranks.gradients, reference.gradients);
    WARN("unequal shares: second-step gradients apart by " << gradients << " of the rounding bound");
    CHECK(gradients <= 1);
  }
  world.barrier("the end of the unequal shares");
}

// Two ranks stopped after 2 steps and resumed to 4 train as two ranks run
// for 4 at once, bit for bit, and two such runs agree bit for bit: with
// dropout on (each rank's own draws, which a resume must restore) and batch
// norm synchronised across the ranks.
TEST_CASE("two ranks resume exactly, and two runs of two ranks agree", "[mpi][training][resume]") {
  auto& world = testing::mpi_world();
  const auto dropout_run = [](const std::string& folder, int iterations) {
    training::TrainConfig config = small_run("batch", true, 1, folder);  // a fresh folder
    config.no_dropout = false;
    // Six levels, so that one decoder level has dropout (the paper's U-Net
    // drops out on the levels from the fifth from the top down to the
    // second from the bottom).
    config.load_size = 72;
    config.crop_size = 64;
    config.num_downs = 6;
    config.max_iterations = iterations;
    return config;
  };
  const auto parameters = [&](const training::TrainConfig& run) {
    std::map<std::string, std::vector<float>> tensors;
    if (world.is_root())
      for (const auto& [name, tensor] : training::load_checkpoint(run.output + "/checkpoint.safetensors").tensors)
        tensors.emplace(name, tensor.to_vector());
    return tensors;
  };
  training::TrainConfig halves = dropout_run("dp_resume", 2);
  training::Trainer(halves, "", {}, false, testing::mpi_world_handle()).run();
  world.barrier("the first half written");
  halves.max_iterations = 4;
  const training::RunSummary resumed_run =
      training::Trainer(halves, halves.output + "/checkpoint.safetensors", {"max_iterations"}, false,
                        testing::mpi_world_handle())
          .run();
  CHECK(resumed_run.trained == 2);  // it went on from step 2, not from the start
  const training::TrainConfig whole = dropout_run("dp_whole", 4), again = dropout_run("dp_again", 4);
  training::Trainer(whole, "", {}, false, testing::mpi_world_handle()).run();
  training::Trainer(again, "", {}, false, testing::mpi_world_handle()).run();
  world.barrier("the runs written");
  if (world.is_root()) {
    const auto resumed = parameters(halves), reference = parameters(whole), repeated = parameters(again);
    REQUIRE(!reference.empty());
    CHECK(resumed == reference);
    CHECK(repeated == reference);
  }
  world.barrier("the end of the resume comparison");
}
