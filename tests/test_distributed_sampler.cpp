// The DataLoader's sharding of an epoch across the ranks of a data-parallel
// run: every example once per epoch, the same global batches on every rank,
// chunks within one of each other, and nothing changed on a single rank.
#include <catch2/catch.hpp>

#include <algorithm>
#include <numeric>
#include <set>
#include <string>

#include <pixgrad/core/error.h>
#include <pixgrad/data/datasets.h>
#include <pixgrad/data/loader.h>

using namespace pixgrad;
using namespace pixgrad::data;

namespace {

using Batches = std::vector<std::vector<size_t>>;

// Example i: a [1, 1, 1] input holding i, named "i".
class IndexDataset : public Dataset {
 public:
  explicit IndexDataset(size_t size) : size_(size) {}
  size_t size() const override { return size_; }
  Example get(size_t index, uint64_t) const override {
    return {Tensor::full({1, 1, 1}, static_cast<float>(index)), Tensor(), std::to_string(index)};
  }

 private:
  size_t size_;
};

// The batching of one process, written out plainly: consecutive slices of batch_size.
Batches plain_batches(const std::vector<size_t>& order, size_t batch_size, bool drop_last) {
  Batches batches;
  for (size_t begin = 0; begin < order.size(); begin += batch_size) {
    const size_t end = std::min(order.size(), begin + batch_size);
    if (drop_last && end - begin < batch_size) break;
    batches.emplace_back(order.begin() + begin, order.begin() + end);
  }
  return batches;
}

std::vector<Batches> all_ranks(const std::vector<size_t>& order, size_t batch_size, int world_size, bool drop_last) {
  std::vector<Batches> ranks;
  for (int rank = 0; rank < world_size; ++rank)
    ranks.push_back(rank_batches(order, batch_size, rank, world_size, drop_last));
  return ranks;
}

struct Drained {
  std::vector<std::vector<std::string>> names;
  std::vector<int64_t> global_samples;
};

Drained drain(DataLoader& loader) {
  Drained out;
  while (std::optional<Batch> batch = loader.next()) {
    CHECK(batch->input.size(0) == static_cast<int64_t>(batch->names.size()));
    out.names.push_back(batch->names);
    out.global_samples.push_back(batch->global_samples);
  }
  return out;
}

}  // namespace

TEST_CASE("distributed sampler: every rank shares each global batch, every example once", "[loader][distributed]") {
  for (int world = 1; world <= 5; ++world) {
    for (size_t batch = 1; batch <= 5; ++batch) {
      // Sizes below one global batch, and every remainder 0 .. batch * world - 1 over the next few.
      for (size_t size = static_cast<size_t>(world); size <= 4 * batch * static_cast<size_t>(world) + 1; ++size) {
        for (bool drop_last : {false, true}) {
          INFO("size " << size << ", batch " << batch << ", world " << world << ", drop_last " << drop_last);
          const std::vector<size_t> order = epoch_order(size, 3, 1, true);
          const std::vector<size_t> sizes = global_batch_sizes(size, batch, world, drop_last);
          const std::vector<Batches> ranks = all_ranks(order, batch, world, drop_last);
          const size_t global = batch * static_cast<size_t>(world);

          // Every global batch is full but the last, which still has one example per rank.
          for (size_t b = 0; b + 1 < sizes.size(); ++b) CHECK(sizes[b] == global);
          if (!sizes.empty()) CHECK(sizes.back() >= static_cast<size_t>(world));
          if (drop_last) CHECK(sizes.size() == size / global);
          const size_t covered = std::accumulate(sizes.begin(), sizes.end(), size_t{0});
          CHECK(covered == (drop_last ? size / global * global : size));

          size_t begin = 0;
          for (size_t b = 0; b < sizes.size(); ++b) {
            std::vector<size_t> joined;
            size_t smallest = SIZE_MAX, largest = 0, previous = SIZE_MAX;
            for (const Batches& mine : ranks) {
              REQUIRE(mine.size() == sizes.size());  // the same number of steps on every rank
              joined.insert(joined.end(), mine[b].begin(), mine[b].end());
              smallest = std::min(smallest, mine[b].size());
              largest = std::max(largest, mine[b].size());
              CHECK(mine[b].size() <= previous);  // the larger chunks first
              previous = mine[b].size();
            }
            CHECK(smallest >= 1);
            CHECK(largest - smallest <= 1);
            // In rank order the chunks are the next contiguous slice of the order.
            REQUIRE(begin + sizes[b] <= order.size());
            CHECK(joined == std::vector<size_t>(order.begin() + begin, order.begin() + begin + sizes[b]));
            begin += sizes[b];
          }
          // Each index once across ranks and batches, none skipped (but a dropped last one).
          std::multiset<size_t> seen;
          for (const Batches& mine : ranks)
            for (const std::vector<size_t>& chunk : mine) seen.insert(chunk.begin(), chunk.end());
          CHECK(seen == std::multiset<size_t>(order.begin(), order.begin() + covered));
          if (world == 1) CHECK(ranks[0] == plain_batches(order, batch, drop_last));
        }
      }
    }
  }
}

TEST_CASE("distributed sampler: hand-worked global batches and chunks", "[loader][distributed]") {
  std::vector<size_t> order(9);
  std::iota(order.begin(), order.end(), 0);
  // 9 examples, 2 per rank, 2 ranks: global batches of 4 leave 1, too few for two
  // ranks, so it joins the second: 4 + 5, split 2 + 2 and 3 + 2.
  CHECK(global_batch_sizes(9, 2, 2, false) == std::vector<size_t>{4, 5});
  CHECK(rank_batches(order, 2, 0, 2, false) == Batches{{0, 1}, {4, 5, 6}});
  CHECK(rank_batches(order, 2, 1, 2, false) == Batches{{2, 3}, {7, 8}});
  // drop_last leaves the short one out instead.
  CHECK(global_batch_sizes(9, 2, 2, true) == std::vector<size_t>{4, 4});
  CHECK(rank_batches(order, 2, 1, 2, true) == Batches{{2, 3}, {6, 7}});
  // A remainder of exactly one per rank stands on its own, as does a larger one.
  CHECK(global_batch_sizes(10, 2, 2, false) == std::vector<size_t>{4, 4, 2});
  CHECK(global_batch_sizes(11, 2, 2, false) == std::vector<size_t>{4, 4, 3});
  // 7 examples, 1 per rank, 3 ranks: 3 + 4, the 4 split 2 + 1 + 1.
  std::vector<size_t> seven(7);
  std::iota(seven.begin(), seven.end(), 0);
  CHECK(global_batch_sizes(7, 1, 3, false) == std::vector<size_t>{3, 4});
  CHECK(rank_batches(seven, 1, 0, 3, false) == Batches{{0}, {3, 4}});
  CHECK(rank_batches(seven, 1, 1, 3, false) == Batches{{1}, {5}});
  CHECK(rank_batches(seven, 1, 2, 3, false) == Batches{{2}, {6}});
  // Fewer examples than one global batch: one short global batch, 2 + 1.
  CHECK(global_batch_sizes(3, 4, 2, false) == std::vector<size_t>{3});
  CHECK(rank_batches(std::vector<size_t>{5, 6, 7}, 4, 0, 2, false) == Batches{{5, 6}});
  CHECK(rank_batches(std::vector<size_t>{5, 6, 7}, 4, 1, 2, false) == Batches{{7}});
  CHECK(global_batch_sizes(3, 4, 2, true).empty());
  CHECK(global_batch_sizes(5, 4, 5, false) == std::vector<size_t>{5});
  // One rank: the plain batching, last smaller batch included.
  CHECK(global_batch_sizes(10, 4, 1, false) == std::vector<size_t>{4, 4, 2});
  CHECK(global_batch_sizes(10, 4, 1, true) == std::vector<size_t>{4, 4});
  CHECK(global_batch_sizes(0, 4, 1, false).empty());
}

TEST_CASE("distributed sampler: fewer examples than ranks and bad ranks are refused", "[loader][distributed]") {
  CHECK_THROWS_WITH(global_batch_sizes(2, 4, 3, false),
                    Catch::Contains("the dataset has 2 examples, fewer than the 3 ranks of this run"));
  CHECK_THROWS_AS(rank_batches({0, 1}, 1, 0, 3, false), Error);
  CHECK_THROWS_AS(rank_batches({0, 1, 2}, 1, 3, 3, false), Error);
  CHECK_THROWS_AS(rank_batches({0, 1, 2}, 1, -1, 3, false), Error);
  CHECK_THROWS_AS(global_batch_sizes(3, 1, 0, false), Error);

  auto dataset = std::make_shared<IndexDataset>(4);
  LoaderOptions options{2, false, 0, 0, 1, false};
  options.world_size = 2;
  options.rank = 2;
  CHECK_THROWS_WITH(DataLoader(dataset, options), Catch::Contains("rank 2 is not one of the 2 ranks"));
  options.rank = -1;
  CHECK_THROWS_AS(DataLoader(dataset, options), Error);
  options.rank = 0;
  options.world_size = 0;
  CHECK_THROWS_AS(DataLoader(dataset, options), Error);
  options.world_size = 5;
  CHECK_THROWS_WITH(DataLoader(dataset, options), Catch::Contains("fewer than the 5 ranks"));
}

TEST_CASE("distributed sampler: two loaders of a two-rank run share each epoch", "[loader][distributed]") {
  auto dataset = std::make_shared<IndexDataset>(9);
  LoaderOptions options{2, true, 17, 2, 2, false};
  options.world_size = 2;
  options.rank = 0;
  DataLoader first(dataset, options);
  options.rank = 1;
  DataLoader second(dataset, options);
  CHECK(first.batches_per_epoch() == 2);
  CHECK(second.batches_per_epoch() == 2);
  first.start_epoch(4);
  second.start_epoch(4);
  const Drained zero = drain(first);
  const Drained one = drain(second);
  REQUIRE(zero.names.size() == 2);
  REQUIRE(one.names.size() == 2);
  // Rank 0's chunk, then rank 1's, batch after batch, is the epoch's order.
  std::vector<std::string> joined;
  for (size_t b = 0; b < 2; ++b) {
    joined.insert(joined.end(), zero.names[b].begin(), zero.names[b].end());
    joined.insert(joined.end(), one.names[b].begin(), one.names[b].end());
  }
  std::vector<std::string> expected;
  for (size_t index : epoch_order(9, 17, 4, true)) expected.push_back(std::to_string(index));
  CHECK(joined == expected);
  CHECK(std::set<std::string>(joined.begin(), joined.end()).size() == 9);
  CHECK(zero.names[0].size() == 2);
  CHECK(zero.names[1].size() == 3);
  CHECK(one.names[1].size() == 2);
  CHECK(zero.global_samples == std::vector<int64_t>{4, 5});
  CHECK(one.global_samples == std::vector<int64_t>{4, 5});

  // Resuming skips the same global batch on both ranks.
  second.start_epoch(4, 1);
  CHECK(drain(second).names == std::vector<std::vector<std::string>>{one.names[1]});

  // On one rank global_samples is the batch's own size.
  DataLoader alone(dataset, LoaderOptions{4, true, 17, 0, 1, false});
  alone.start_epoch(4);
  CHECK(drain(alone).global_samples == std::vector<int64_t>{4, 4, 1});
}
