// MpiCommunicator on two (or more) ranks: sums and maxima against a double
// reference that every rank computes from every rank's inputs, and the
// same bits on every rank (replicas that differ in the last bit drift).
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include <pixgrad/core/generator.h>
#include <pixgrad/core/tensor.h>

#include "mpi_world.h"

using namespace pixgrad;
using distributed::ReduceOp;

namespace {

// What rank `rank` contributes: Philox draws keyed by the rank.
Tensor contribution(int rank, int64_t length, DType dtype) {
  Generator generator(1000 + static_cast<uint64_t>(rank));
  return Tensor::uniform({length}, -1, 1, generator).to(dtype);
}

// Each rank's result in a slot of its own (the others add zeros, which is
// exact), so that every rank can compare the ranks' results bit for bit.
std::vector<std::vector<double>> results_of_every_rank(const Tensor& result) {
  auto& world = testing::mpi_world();
  const int64_t n = result.numel();
  std::vector<double> slots(static_cast<size_t>(n * world.size()), 0.0);
  const std::vector<double> mine = result.to_double_vector();
  std::copy(mine.begin(), mine.end(), slots.begin() + world.rank() * n);
  world.all_reduce(slots, ReduceOp::Sum, "the results' slots");
  std::vector<std::vector<double>> every;
  for (int r = 0; r < world.size(); ++r) every.emplace_back(slots.begin() + r * n, slots.begin() + (r + 1) * n);
  return every;
}

}  // namespace

TEST_CASE("all_reduce sums and maxima match a double reference with the same bits on every rank", "[mpi]") {
  auto& world = testing::mpi_world();
  for (const DType dtype : {DType::Float32, DType::Float64}) {
    // Lengths that the world does and does not divide, one element, and a large one.
    for (const int64_t length : {int64_t{1}, int64_t{2}, int64_t{7}, int64_t{1000003}}) {
      for (const ReduceOp op : {ReduceOp::Sum, ReduceOp::Max}) {
        Tensor tensor = contribution(world.rank(), length, dtype);
        world.all_reduce(tensor, op, "the test tensor");
        std::vector<double> expected(static_cast<size_t>(length), op == ReduceOp::Sum ? 0.0 : -INFINITY);
        for (int r = 0; r < world.size(); ++r) {
          const std::vector<double> theirs = contribution(r, length, dtype).to_double_vector();
          for (size_t i = 0; i < expected.size(); ++i)
            expected[i] = op == ReduceOp::Sum ? expected[i] + theirs[i] : std::max(expected[i], theirs[i]);
        }
        const std::vector<double> got = tensor.to_double_vector();
        // A sum of W values in [-1, 1]: float rounding at most W ulps of W.
        const double bound = op == ReduceOp::Max ? 0 : dtype == DType::Float32 ? world.size() * world.size() * 6e-8
                                                                               : world.size() * world.size() * 1e-16;
        double worst = 0;
        for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(got[i] - expected[i]));
        INFO("dtype " << to_string(dtype) << ", length " << length << ", op " << (op == ReduceOp::Sum ? "sum" : "max"));
        CHECK(worst <= bound);
        const std::vector<std::vector<double>> every = results_of_every_rank(tensor);
        for (int r = 1; r < world.size(); ++r) CHECK(every[r] == every[0]);
      }
    }
  }
}

TEST_CASE("all_reduce of host numbers and barriers", "[mpi]") {
  auto& world = testing::mpi_world();
  std::vector<double> values = {1.0, static_cast<double>(world.rank()), -0.5 * world.rank()};
  world.all_reduce(values, ReduceOp::Sum, "host sums");
  const double ranks = world.size(), rank_sum = ranks * (ranks - 1) / 2;
  CHECK(values == std::vector<double>{ranks, rank_sum, -0.5 * rank_sum});
  std::vector<double> maxima = {static_cast<double>(world.rank()), -static_cast<double>(world.rank())};
  world.all_reduce(maxima, ReduceOp::Max, "host maxima");
  CHECK(maxima == std::vector<double>{ranks - 1, 0.0});
  world.barrier("a test barrier");
  std::vector<double> empty;
  world.all_reduce(empty, ReduceOp::Sum, "nothing");
  CHECK(empty.empty());
}
