// Synchronised batch norm and the differentiable all-reduce beneath it, with
// ranks played by threads (tests/thread_communicator.h): N ranks, each with
// a share of a batch, must compute what one BatchNorm2d computes over the
// whole batch. The shares are uneven (1 and 2 images, or 2, 1 and 3), so a
// statistic divided by a local count, or a gradient missing another rank's
// part, shows.
#include <catch2/catch.hpp>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <pixgrad/core/autograd.h>
#include <pixgrad/core/ops.h>
#include <pixgrad/distributed/all_reduce.h>
#include <pixgrad/layers/activation.h>
#include <pixgrad/layers/conv.h>
#include <pixgrad/layers/normalization.h>
#include <pixgrad/layers/sequential.h>
#include <pixgrad/layers/sync_batch_norm.h>
#include "compare.h"
#include "gradcheck.h"
#include "thread_communicator.h"

using namespace pixgrad;
using Catch::Matchers::Contains;
using distributed::Communicator;

namespace {

constexpr int64_t kChannels = 3, kHeight = 5, kWidth = 7;
constexpr double kMomentum = 0.3, kEps = 1e-5;

// A whole batch, the weighting of the output that makes the loss
// sum(output * weighting), and the module's state before the step.
struct Problem {
  Tensor input, weighting, weight, bias, running_mean, running_var;
};

Problem make_problem(int64_t batch, DType dtype, uint64_t seed) {
  // Inputs off zero and of a few units, so that the mean matters.
  return {testing::random_tensor({batch, kChannels, kHeight, kWidth}, seed, dtype, -2, 3),
          testing::random_tensor({batch, kChannels, kHeight, kWidth}, seed + 1, dtype),
          testing::random_tensor({kChannels}, seed + 2, dtype, 0.5, 1.5),
          testing::random_tensor({kChannels}, seed + 3, dtype),
          testing::random_tensor({kChannels}, seed + 4, dtype),
          testing::random_tensor({kChannels}, seed + 5, dtype, 0.5, 2)};
}

std::shared_ptr<nn::BatchNorm2d> make_norm(const Problem& problem) {
  auto norm = nn::make<nn::BatchNorm2d>(nn::BatchNorm2dOptions(kChannels).momentum(kMomentum).eps(kEps));
  norm->to(problem.input.dtype());
  norm->weight.copy_(problem.weight);
  norm->bias.copy_(problem.bias);
  norm->running_mean.copy_(problem.running_mean);
  norm->running_var.copy_(problem.running_var);
  return norm;
}

// What one training step of a BatchNorm2d gives.
struct Step {
  Tensor output, grad_input, grad_weight, grad_bias, running_mean, running_var;
};

// Forward on `input` (a fresh leaf), then backward of sum(output * weighting).
Step train_step(nn::BatchNorm2d& norm, const Tensor& input, const Tensor& weighting) {
  Tensor x = input.clone();
  x.set_requires_grad();
  const Tensor y = norm.forward(x);
  sum(mul(y, weighting)).backward();
  return {y.detach(), x.grad(), norm.weight.grad(), norm.bias.grad(), norm.running_mean.clone(),
          norm.running_var.clone()};
}

// The same step on len(batches) thread ranks, rank r holding the next
// batches[r] images of the problem's batch.
std::vector<Step> distributed_steps(const Problem& problem, const std::vector<int64_t>& batches) {
  std::vector<int64_t> starts{0};
  for (const int64_t batch : batches) starts.push_back(starts.back() + batch);
  std::vector<Step> steps(batches.size());
  testing::ThreadWorld(static_cast<int>(batches.size())).run([&](const std::shared_ptr<Communicator>& world) {
    const size_t r = static_cast<size_t>(world->rank());
    const auto norm = make_norm(problem);
    nn::synchronize_batch_norm(*norm, world);
    if (!norm->synchronizes()) throw std::logic_error("BatchNorm2d does not synchronise");
    steps[r] = train_step(*norm, problem.input.batch_slice(starts[r], batches[r]),
                          problem.weighting.batch_slice(starts[r], batches[r]));
  });
  return steps;
}

std::vector<Tensor> field(const std::vector<Step>& steps, Tensor Step::*member) {
  std::vector<Tensor> values;
  for (const Step& step : steps) values.push_back(step.*member);
  return values;
}

Tensor sum_of(const std::vector<Tensor>& tensors) {
  Tensor total = tensors[0];
  for (size_t i = 1; i < tensors.size(); ++i) total = add(total, tensors[i]);
  return total;
}

void check_close(const std::string& what, const Tensor& actual, const Tensor& expected,
                 const testing::Tolerance& tolerance) {
  const testing::Comparison result = testing::compare(actual, expected, tolerance);
  INFO(what << ": " << result.describe());
  CHECK(result.passed());
}

// Tolerances, for one dtype. Float32: the synchronised path computes the
// same statistics as the batch_norm kernel (sums accumulated in double,
// two-pass variance), but rounds each intermediate (mean, deviations,
// variance, scale) to float where the kernel keeps double, and reaches the
// gradients through the chain of its ops rather than the closed form: a few
// float roundings (~1e-7 relative) apart. kNormTolerance (1e-4 of the
// element plus 1e-5 of the RMS) is what the suite holds batch norm to
// elsewhere; the worst element measured uses under 1% of it, while a wrong
// count, a missing rank's gradient or a wrong momentum is off by percents.
// The input gradient cancels (dy minus its two projections), so it gets
// batch norm's gradient floor as well; weight and bias gradients are sums
// of N*H*W terms of order one, with an absolute 1e-5 for a sum that
// cancels. Running statistics take two more float operations: 1e-5.
// Float64: the same computation with 29 more bits; the errors measured are
// ~1e-15 relative, and 1e-12 leaves a wide margin.
struct Tolerances {
  testing::Tolerance output, grad_input, parameters, running;
};

Tolerances tolerances_for(DType dtype, const Problem& problem) {
  if (dtype == DType::Float64) {
    const testing::Tolerance tight{1e-12, 1e-12, 0};
    return {tight, tight, tight, tight};
  }
  const double floor = testing::batch_norm_gradient_floor(problem.input, problem.weighting, problem.weight, Tensor(),
                                                          true, kEps);
  return {testing::kNormTolerance, testing::kNormTolerance.plus_absolute(floor),
          testing::kNormTolerance.plus_absolute(1e-5), {1e-5, 1e-6, 0}};
}

// Every result of the distributed step against BatchNorm2d over the whole batch.
void check_against_whole_batch(const std::vector<int64_t>& batches, DType dtype, uint64_t seed) {
  int64_t total = 0;
  for (const int64_t batch : batches) total += batch;
  const Problem problem = make_problem(total, dtype, seed);
  const Step whole = train_step(*make_norm(problem), problem.input, problem.weighting);
  const std::vector<Step> ranks = distributed_steps(problem, batches);
  const Tolerances tolerance = tolerances_for(dtype, problem);

  // Each rank's output and input gradient are its slice of the whole
  // batch's; the input gradient is that of the sum of every rank's loss.
  check_close("output", concat(field(ranks, &Step::output), 0), whole.output, tolerance.output);
  check_close("input gradient", concat(field(ranks, &Step::grad_input), 0), whole.grad_input, tolerance.grad_input);
  // Parameter gradients are per rank; their sum (what gradient averaging
  // reduces, before dividing) is the whole batch's.
  check_close("weight gradient", sum_of(field(ranks, &Step::grad_weight)), whole.grad_weight, tolerance.parameters);
  check_close("bias gradient", sum_of(field(ranks, &Step::grad_bias)), whole.grad_bias, tolerance.parameters);
  // Every rank's running statistics follow the global ones.
  for (size_t r = 0; r < ranks.size(); ++r) {
    INFO("rank " << r);
    check_close("running mean", ranks[r].running_mean, whole.running_mean, tolerance.running);
    check_close("running variance", ranks[r].running_var, whole.running_var, tolerance.running);
  }
}

// A world whose every collective throws: a forward that completes with it
// entered none.
class NoCollectives final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 2; }
  int local_rank() const override { return 0; }
  std::string backend() const override { return "none"; }
  void all_reduce(Tensor&, distributed::ReduceOp, const std::string& what) override { refuse(what); }
  void all_reduce(std::vector<double>&, distributed::ReduceOp, const std::string& what) override { refuse(what); }
  void barrier(const std::string& what) override { refuse(what); }

 private:
  [[noreturn]] static void refuse(const std::string& what) {
    throw std::logic_error("collective entered: " + what);
  }
};

}  // namespace

TEST_CASE("SyncBatchNorm on 2 ranks of 1 and 2 images matches BatchNorm2d on all 3", "[distributed][batchnorm]") {
  SECTION("float32") { check_against_whole_batch({1, 2}, DType::Float32, 7101); }
  SECTION("float64") { check_against_whole_batch({1, 2}, DType::Float64, 7111); }
}

TEST_CASE("SyncBatchNorm on 3 ranks of 2 then 1 then 3 images matches BatchNorm2d on all 6", "[distributed][batchnorm]") {
  SECTION("float32") { check_against_whole_batch({2, 1, 3}, DType::Float32, 7201); }
  SECTION("float64") { check_against_whole_batch({2, 1, 3}, DType::Float64, 7211); }
}

TEST_CASE("SyncBatchNorm enters no collective in eval mode or under NoGradGuard", "[distributed][batchnorm]") {
  const Problem problem = make_problem(2, DType::Float32, 7301);
  const auto norm = make_norm(problem);
  const Tensor running_mean = problem.running_mean.clone(), running_var = problem.running_var.clone();
  REQUIRE(nn::synchronize_batch_norm(*norm, std::make_shared<NoCollectives>()) == 1);

  SECTION("eval: the running statistics, left alone") {
    norm->eval();
    CHECK_FALSE(norm->synchronizes());
    const Tensor y = norm->forward(problem.input);
    const Tensor expected =
        batch_norm(problem.input, problem.weight, problem.bias, running_mean, running_var, {false, kMomentum, kEps});
    CHECK(y.to_vector() == expected.to_vector());
    CHECK(norm->running_mean.to_vector() == problem.running_mean.to_vector());
  }
  SECTION("training under NoGradGuard: this rank's batch alone, as plain BatchNorm2d") {
    const NoGradGuard no_grad;
    CHECK_FALSE(norm->synchronizes());
    const Tensor y = norm->forward(problem.input);
    const Tensor expected =
        batch_norm(problem.input, problem.weight, problem.bias, running_mean, running_var, {true, kMomentum, kEps});
    CHECK(y.to_vector() == expected.to_vector());
    CHECK(norm->running_mean.to_vector() == running_mean.to_vector());
    CHECK(norm->running_var.to_vector() == running_var.to_vector());
  }
  SECTION("training with grad mode on: a collective, so the two above were not") {
    CHECK(norm->synchronizes());
    CHECK_THROWS_WITH(norm->forward(problem.input), Contains("collective entered: BatchNorm2d"));
  }
}

TEST_CASE("SyncBatchNorm in a world of one is plain BatchNorm2d", "[distributed][batchnorm]") {
  const Problem problem = make_problem(2, DType::Float32, 7401);
  const auto norm = make_norm(problem);
  nn::synchronize_batch_norm(*norm, distributed::single_process());
  CHECK_FALSE(norm->synchronizes());
  Tensor x = problem.input.clone();
  x.set_requires_grad();
  const Tensor y = norm->forward(x);
  REQUIRE(y.grad_fn());
  CHECK(y.grad_fn()->op == "batch_norm");  // the fused kernel, not the composition
}

TEST_CASE("synchronize_batch_norm reaches every BatchNorm2d of a network", "[distributed][batchnorm]") {
  nn::Sequential net(nn::make<nn::Conv2d>(nn::Conv2dOptions(3, 4, 3)),
                     nn::make<nn::BatchNorm2d>(nn::BatchNorm2dOptions(4)),
                     nn::make<nn::Sequential>(nn::make<nn::LeakyReLU>(0.2),
                                              nn::make<nn::BatchNorm2d>(nn::BatchNorm2dOptions(4))),
                     nn::make<nn::InstanceNorm2d>(nn::InstanceNorm2dOptions(4)));
  const auto world = std::make_shared<NoCollectives>();
  const auto norms = [&] {
    std::vector<std::shared_ptr<nn::BatchNorm2d>> found;
    for (const auto& named : net.named_modules())
      if (auto norm = std::dynamic_pointer_cast<nn::BatchNorm2d>(named.second)) found.push_back(norm);
    return found;
  }();
  REQUIRE(norms.size() == 2);

  CHECK(nn::synchronize_batch_norm(net, world) == 2);
  for (const auto& norm : norms) CHECK(norm->synchronize_with == world);
  CHECK(nn::synchronize_batch_norm(net, nullptr) == 2);
  for (const auto& norm : norms) CHECK_FALSE(norm->synchronize_with);
}

TEST_CASE("all_reduce_sum sums over ranks, and so does its gradient", "[distributed][batchnorm]") {
  constexpr int kRanks = 3;
  std::vector<Tensor> inputs, weightings;
  for (int r = 0; r < kRanks; ++r) {
    inputs.push_back(testing::random_tensor({2, 3}, 7501 + r));
    weightings.push_back(testing::random_tensor({2, 3}, 7511 + r));
  }
  // By hand: y = sum_q x_q on every rank, so with loss_q = sum(y * R_q) the
  // gradient of sum_q loss_q with respect to x_r is sum_q R_q, on every rank.
  const Tensor expected_sum = sum_of(inputs), expected_gradient = sum_of(weightings);

  SECTION("first order") {
    std::vector<Tensor> outputs(kRanks), gradients(kRanks);
    testing::ThreadWorld(kRanks).run([&](Communicator& world) {
      const size_t r = static_cast<size_t>(world.rank());
      Tensor x = inputs[r].clone();
      x.set_requires_grad();
      const Tensor y = distributed::all_reduce_sum(x, world, "test sum");
      sum(mul(y, weightings[r])).backward();
      outputs[r] = y.detach();
      gradients[r] = x.grad();
    });
    for (int r = 0; r < kRanks; ++r) {
      INFO("rank " << r);
      // Summed in double in rank order, as sum_of does: the same bits.
      CHECK(outputs[r].to_double_vector() == expected_sum.to_double_vector());
      CHECK(gradients[r].to_double_vector() == expected_gradient.to_double_vector());
    }
  }
  SECTION("second order, through the backward's own all-reduce") {
    // loss_q = sum(y^2 * R_q) gives g_r = d(sum_q loss_q)/dx_r = 2 y sum_q R_q;
    // with h_q = sum(g_q), d(sum_q h_q)/dx_r = 2 * kRanks * sum_q R_q.
    std::vector<Tensor> gradients(kRanks), second(kRanks);
    testing::ThreadWorld(kRanks).run([&](Communicator& world) {
      const size_t r = static_cast<size_t>(world.rank());
      Tensor x = inputs[r].clone();
      x.set_requires_grad();
      const Tensor y = distributed::all_reduce_sum(x, world, "test sum");
      const Tensor loss = sum(mul(square(y), weightings[r]));
      const Tensor g = grad(loss, {x}, Tensor(), GradOptions().create_graph(true))[0];
      gradients[r] = g.detach();
      sum(g).backward();
      second[r] = x.grad();
    });
    for (int r = 0; r < kRanks; ++r) {
      INFO("rank " << r);
      check_close("gradient", gradients[r], mul(mul(expected_sum, expected_gradient), 2.0), {1e-14, 0, 0});
      check_close("second-order gradient", second[r], mul(expected_gradient, 2.0 * kRanks), {1e-14, 0, 0});
    }
  }
}

TEST_CASE("ThreadWorld ends every rank when one fails or the ranks disagree", "[distributed]") {
  SECTION("a rank that throws before a collective") {
    const auto one_breaks = [](Communicator& world) {
      if (world.rank() == 1) throw std::runtime_error("rank 1 broke");
      world.barrier("never completed");
    };
    CHECK_THROWS_WITH(testing::ThreadWorld(2).run(one_breaks), "rank 1 broke");
  }
  SECTION("ranks calling different collectives") {
    const auto out_of_order = [](Communicator& world) {
      std::vector<double> values{1.0};
      world.all_reduce(values, distributed::ReduceOp::Sum, world.rank() == 0 ? "mean" : "variance");
    };
    CHECK_THROWS_WITH(testing::ThreadWorld(2).run(out_of_order),
                      Contains("while rank 0 called sum of 1 host values 'mean'"));
  }
  SECTION("maxima") {
    std::vector<double> spreads(3);
    testing::ThreadWorld(3).run([&](Communicator& world) {
      std::vector<double> values{static_cast<double>(world.rank()), -static_cast<double>(world.rank())};
      world.all_reduce(values, distributed::ReduceOp::Max, "max");
      spreads[static_cast<size_t>(world.rank())] = values[0] - values[1];  // max(r) - max(-r) = 2 - 0
    });
    CHECK(spreads == std::vector<double>{2, 2, 2});
  }
}
