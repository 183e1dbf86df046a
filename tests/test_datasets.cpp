// Datasets on the real facades data, and the DataLoader's order, resumption,
// prefetching and error propagation on small synthetic datasets.
#include <catch2/catch.hpp>

#include "test_paths.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <set>
#include <thread>

#include <pixgrad/core/error.h>
#include <pixgrad/data/datasets.h>
#include <pixgrad/data/loader.h>

using namespace pixgrad;
using namespace pixgrad::data;

namespace {

const std::string kData = testing::shared_data_root();
const std::string kFacades = kData + "/facades";
const std::string kCmp = kData + "/cmp_facade_base";

bool have_data() { return testing::have_shared_data(kFacades) && testing::have_shared_data(kCmp); }

bool same(const Tensor& a, const Tensor& b) { return a.shape() == b.shape() && a.to_vector() == b.to_vector(); }

void check_range(const Tensor& tensor, float low, float high) {
  const std::vector<float> values = tensor.to_vector();
  const auto [smallest, largest] = std::minmax_element(values.begin(), values.end());
  CHECK(*smallest >= low);
  CHECK(*largest <= high);
}

// [C, H, W] mirrored left-right.
Tensor mirrored(const Tensor& chw) {
  const int64_t width = chw.size(2);
  std::vector<float> values = chw.to_vector();
  for (size_t row = 0; row < values.size(); row += width) std::reverse(values.begin() + row, values.begin() + row + width);
  return Tensor::from_vector(values, chw.shape());
}

// The seed (from 0 up) whose augmentation at `index` flips, or does not.
uint64_t seed_with_flip(bool flip, size_t index) {
  uint64_t seed = 0;
  while (draw_augmentation(seed, index, 256, 256, 256, 256, true).flip != flip) ++seed;
  return seed;
}

// Example i: a [1, 2, 2] input filled with i (plus the seed's low bit, to see it arrive), named "i".
class CountingDataset : public Dataset {
 public:
  CountingDataset(size_t size, size_t failing = SIZE_MAX, int delay_ms = 0)
      : size_(size), failing_(failing), delay_ms_(delay_ms) {}
  size_t size() const override { return size_; }
  Example get(size_t index, uint64_t seed) const override {
    if (delay_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms_));
    if (index == failing_) fail("image 'broken_", index, ".jpg': corrupt image data");
    const float value = static_cast<float>(index) + 0.5f * static_cast<float>(seed & 1);
    return {Tensor::full({1, 2, 2}, value), Tensor::full({1, 2, 2}, -value), std::to_string(index)};
  }

 private:
  size_t size_, failing_;
  int delay_ms_;
};

std::vector<std::vector<std::string>> drain(DataLoader& loader) {
  std::vector<std::vector<std::string>> names;
  while (std::optional<Batch> batch = loader.next()) names.push_back(batch->names);
  return names;
}

}  // namespace

TEST_CASE("aligned facades: split sizes, shapes and range", "[datasets]") {
  if (!have_data()) return;
  CHECK(AlignedDataset(kFacades, "train").size() == 400);
  CHECK(AlignedDataset(kFacades, "val").size() == 100);
  CHECK(AlignedDataset(kFacades, "test").size() == 106);

  const AlignedDataset train(kFacades, "train");
  for (size_t index : {size_t{0}, size_t{399}}) {
    const Example example = train.get(index, 17);
    CHECK(example.input.shape() == Shape{3, 256, 256});
    CHECK(example.target.shape() == Shape{3, 256, 256});
    check_range(example.input, -1.0f, 1.0f);
    check_range(example.target, -1.0f, 1.0f);
    CHECK(!example.name.empty());
  }
  CHECK_THROWS_WITH(train.get(400, 0), Catch::Contains("out of range"));
  CHECK_THROWS_AS(AlignedDataset(kFacades, "train", AlignedOptions{Direction::AtoB, 256, 300, false, {}}), Error);
}

TEST_CASE("aligned facades: BtoA takes the right half as input", "[datasets]") {
  if (!have_data()) return;
  // load_size = crop_size = 256 and no flip: the halves pass through untouched.
  const AlignedOptions exact{Direction::AtoB, 256, 256, true, {}};
  AlignedOptions swapped = exact;
  swapped.direction = Direction::BtoA;
  const AlignedDataset a_to_b(kFacades, "val", exact);
  const AlignedDataset b_to_a(kFacades, "val", swapped);
  const Example forward = a_to_b.get(3, 0);
  const Example backward = b_to_a.get(3, 0);

  const std::string path = a_to_b.files()[3];
  const Image both = load_image(path);
  REQUIRE(both.width == 512);
  const Tensor left = image_to_tensor(crop(both, 0, 0, 256, 256), path);
  const Tensor right = image_to_tensor(crop(both, 256, 0, 256, 256), path);
  CHECK(same(forward.input, left));
  CHECK(same(forward.target, right));
  CHECK(same(backward.input, right));
  CHECK(same(backward.target, left));
  CHECK(backward.name == std::filesystem::path(path).stem().string());
}

TEST_CASE("aligned facades: augmentation is a function of (index, seed)", "[datasets]") {
  if (!have_data()) return;
  const AlignedDataset train(kFacades, "train");
  const Example first = train.get(5, 1234);
  const Example again = train.get(5, 1234);
  CHECK(same(first.input, again.input));
  CHECK(same(first.target, again.target));
  int differing = 0;
  for (uint64_t seed = 1; seed <= 4; ++seed) differing += !same(train.get(5, seed).input, first.input);
  CHECK(differing == 4);

  // Flipping mirrors input and target together; no_flip never flips.
  const AlignedDataset whole(kFacades, "train", AlignedOptions{Direction::AtoB, 256, 256, false, {}});
  const Example plain = whole.get(7, seed_with_flip(false, 7));
  const Example flipped = whole.get(7, seed_with_flip(true, 7));
  CHECK(same(flipped.input, mirrored(plain.input)));
  CHECK(same(flipped.target, mirrored(plain.target)));
  const AlignedDataset never(kFacades, "train", AlignedOptions{Direction::AtoB, 256, 256, true, {}});
  CHECK(same(never.get(7, seed_with_flip(true, 7)).input, plain.input));

  int flips = 0;
  for (uint64_t seed = 0; seed < 1000; ++seed) flips += draw_augmentation(seed, 3, 286, 286, 256, 256, true).flip;
  CHECK(flips > 430);
  CHECK(flips < 570);
}

TEST_CASE("CMP base: splits, one-hot labels and photo targets", "[datasets]") {
  if (!have_data()) return;
  CHECK(CmpDataset(kCmp, "train").size() == 299);
  CHECK(CmpDataset(kCmp, "test").size() == 79);
  CHECK(CmpDataset(kCmp, "all", CmpOptions{286, 256, false, 10, 19, {}}).size() == 10);
  CHECK_THROWS_WITH(CmpDataset(kCmp, "validation"), Catch::Contains("unknown split"));

  const CmpDataset test(kCmp, "test");
  for (size_t index : {size_t{0}, size_t{1}}) {  // cmp_b0300 (portrait) and cmp_b0301 (landscape, 647x329)
    const Example example = test.get(index, 99);
    CHECK(example.name == "cmp_b030" + std::to_string(index));
    REQUIRE(example.input.shape() == Shape{CmpDataset::kClasses, 256, 256});
    CHECK(example.target.shape() == Shape{3, 256, 256});
    check_range(example.target, -1.0f, 1.0f);
    const std::vector<float> one_hot = example.input.to_vector();
    const size_t plane = 256 * 256;
    std::set<int> classes;
    bool exact = true;
    for (size_t i = 0; i < plane; ++i) {
      float total = 0;
      for (int c = 0; c < CmpDataset::kClasses; ++c) {
        const float v = one_hot[c * plane + i];
        exact = exact && (v == 0.0f || v == 1.0f);
        total += v;
        if (v == 1.0f) classes.insert(c);
      }
      exact = exact && total == 1.0f;
    }
    CHECK(exact);
    CHECK(classes.size() >= 3);  // background, facade, windows at least
  }
  CHECK(same(test.get(1, 5).input, test.get(1, 5).input));
}

TEST_CASE("folder dataset: inputs only, resized or kept", "[datasets]") {
  if (!have_data()) return;
  const FolderDataset folder(kFacades + "/test");
  CHECK(folder.size() == 106);
  const Example example = folder.get(0, 0);
  CHECK(example.input.shape() == Shape{3, 256, 256});
  CHECK_FALSE(example.target.defined());
  check_range(example.input, -1.0f, 1.0f);

  const FolderDataset single(kFacades + "/test/1.jpg", FolderOptions{0});
  CHECK(single.size() == 1);
  CHECK(single.get(0, 0).input.shape() == Shape{3, 256, 512});
  CHECK(single.get(0, 0).name == "1");
  CHECK_THROWS_WITH(FolderDataset(kFacades + "/missing"), Catch::Contains("is not a directory"));
}

TEST_CASE("loader: batch shapes, every item once, partial and dropped last batch", "[loader]") {
  auto dataset = std::make_shared<CountingDataset>(10);
  DataLoader loader(dataset, LoaderOptions{4, true, 7, 2, 2, false});
  CHECK(loader.batches_per_epoch() == 3);
  loader.start_epoch(0);
  std::multiset<std::string> seen;
  std::vector<int64_t> sizes;
  while (std::optional<Batch> batch = loader.next()) {
    REQUIRE(batch->input.dim() == 4);
    CHECK(batch->input.shape() == Shape{batch->input.size(0), 1, 2, 2});
    CHECK(batch->target.shape() == batch->input.shape());
    sizes.push_back(batch->input.size(0));
    // Each item's values sit in its own slice of the stacked tensor.
    const std::vector<float> values = batch->input.to_vector();
    for (size_t i = 0; i < batch->names.size(); ++i) CHECK(std::floor(values[4 * i]) == std::stof(batch->names[i]));
    seen.insert(batch->names.begin(), batch->names.end());
  }
  CHECK(sizes == std::vector<int64_t>{4, 4, 2});
  CHECK(seen.size() == 10);
  CHECK(std::set<std::string>(seen.begin(), seen.end()).size() == 10);
  CHECK_FALSE(loader.next().has_value());

  DataLoader dropping(dataset, LoaderOptions{4, false, 7, 2, 2, true});
  dropping.start_epoch(0);
  CHECK(drain(dropping) ==
        std::vector<std::vector<std::string>>{{"0", "1", "2", "3"}, {"4", "5", "6", "7"}});
  CHECK_THROWS_AS(DataLoader(std::make_shared<CountingDataset>(3), LoaderOptions{4, false, 0, 1, 1, true}), Error);
}

TEST_CASE("loader: the order is a function of (seed, epoch), whatever the threads", "[loader]") {
  auto dataset = std::make_shared<CountingDataset>(37);
  DataLoader threaded(dataset, LoaderOptions{3, true, 11, 4, 3, false});
  DataLoader inline_loader(dataset, LoaderOptions{3, true, 11, 0, 1, false});
  threaded.start_epoch(2);
  inline_loader.start_epoch(2);
  const auto epoch2 = drain(threaded);
  CHECK(epoch2 == drain(inline_loader));
  threaded.start_epoch(3);
  CHECK(drain(threaded) != epoch2);
  threaded.start_epoch(2);
  CHECK(drain(threaded) == epoch2);
  CHECK(epoch_order(37, 11, 2, true) != epoch_order(37, 12, 2, true));
  CHECK(epoch_order(5, 11, 2, false) == std::vector<size_t>{0, 1, 2, 3, 4});
  CHECK(epoch_augmentation_seed(11, 2) != epoch_augmentation_seed(11, 3));
}

TEST_CASE("loader: resuming with skipped batches replays the rest exactly", "[loader]") {
  auto dataset = std::make_shared<CountingDataset>(23);
  const LoaderOptions options{4, true, 5, 2, 4, false};
  DataLoader full(dataset, options);
  full.start_epoch(1);
  std::vector<Batch> expected;
  while (std::optional<Batch> batch = full.next()) expected.push_back(*batch);
  REQUIRE(expected.size() == 6);

  DataLoader resumed(dataset, options);
  resumed.start_epoch(1, 4);
  CHECK(resumed.batches_done() == 4);
  for (size_t b = 4; b < expected.size(); ++b) {
    std::optional<Batch> batch = resumed.next();
    REQUIRE(batch.has_value());
    CHECK(batch->names == expected[b].names);
    CHECK(same(batch->input, expected[b].input));  // same augmentation seed too
  }
  CHECK_FALSE(resumed.next().has_value());
  CHECK_THROWS_AS(resumed.start_epoch(1, 7), Error);
}

TEST_CASE("loader: a worker's exception reaches the consumer, then loading goes on", "[loader]") {
  auto dataset = std::make_shared<CountingDataset>(12, 5);
  DataLoader loader(dataset, LoaderOptions{2, false, 0, 3, 4, false});
  loader.start_epoch(0);
  CHECK(loader.next()->names == std::vector<std::string>{"0", "1"});
  CHECK(loader.next()->names == std::vector<std::string>{"2", "3"});
  CHECK_THROWS_WITH(loader.next(), Catch::Contains("image 'broken_5.jpg'"));
  CHECK(loader.next()->names == std::vector<std::string>{"6", "7"});
  CHECK_THROWS_WITH(DataLoader(dataset, LoaderOptions{}).next(), Catch::Contains("start_epoch"));
}

TEST_CASE("loader: destroying it mid-epoch stops the workers promptly", "[loader]") {
  auto slow = std::make_shared<CountingDataset>(100, SIZE_MAX, 20);
  const auto start = std::chrono::steady_clock::now();
  {
    DataLoader loader(slow, LoaderOptions{2, true, 0, 4, 8, false});
    loader.start_epoch(0);
    CHECK(loader.next().has_value());
    loader.start_epoch(1);  // abandons epoch 0 half-loaded
    CHECK(loader.next().has_value());
  }
  // 100 items at 20 ms would take 2 s on one thread; stopping leaves at most one in flight per worker.
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::milliseconds(1000));
}

TEST_CASE("loader: real facades batches", "[loader][datasets]") {
  if (!have_data()) return;
  auto train = std::make_shared<AlignedDataset>(kFacades, "train");
  DataLoader loader(train, LoaderOptions{4, true, 1, 2, 2, false});
  CHECK(loader.batches_per_epoch() == 100);
  loader.start_epoch(0);
  for (int b = 0; b < 2; ++b) {
    const std::optional<Batch> batch = loader.next();
    REQUIRE(batch.has_value());
    CHECK(batch->input.shape() == Shape{4, 3, 256, 256});
    CHECK(batch->target.shape() == Shape{4, 3, 256, 256});
    CHECK(batch->names.size() == 4);
  }
}
