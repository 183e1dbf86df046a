// The batch pipeline; loader.h describes the threading model.
#include <pixgrad/data/loader.h>

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include <pixgrad/core/error.h>
#include <pixgrad/kernels/philox.h>

namespace pixgrad::data {

namespace {

uint64_t join_words(uint32_t low, uint32_t high) { return uint64_t{low} | (uint64_t{high} << 32); }

// A [C, H, W] tensor's size as one says it of an image: "WxH (C channels)".
std::string image_size(const Tensor& chw) {
  if (chw.dim() != 3) return chw.summary();
  return std::to_string(chw.size(2)) + "x" + std::to_string(chw.size(1)) + " (" + std::to_string(chw.size(0)) +
         " channels)";
}

// Stacks same-shaped [C, H, W] tensors into [B, C, H, W].
Tensor stack(const std::vector<Example>& examples, Tensor Example::*member, const char* role) {
  const Tensor& first = examples.front().*member;
  Shape shape = first.shape();
  const size_t item_bytes = first.nbytes();
  shape.insert(shape.begin(), static_cast<int64_t>(examples.size()));
  Tensor out = Tensor::empty(shape);
  char* destination = static_cast<char*>(out.raw_data());
  for (size_t i = 0; i < examples.size(); ++i) {
    const Tensor& item = examples[i].*member;
    PIXGRAD_CHECK(item.defined() && item.is_cpu() && item.dtype() == first.dtype(), "DataLoader: ", role, " of '",
                  examples[i].name, "' is ", item.defined() ? item.summary() : "undefined", " but that of '",
                  examples.front().name, "' is ", first.summary(), "; a batch needs CPU tensors of one dtype");
    // Possible with --preprocess none or scale_width, whose sizes follow the files.
    PIXGRAD_CHECK(item.shape() == first.shape(), "DataLoader: the ", role, " of '", examples[i].name, "' is ",
                  image_size(item), " but that of '", examples.front().name, "' is ", image_size(first),
                  "; images of different sizes need --batch-size 1 (or a --preprocess mode with a fixed crop, such"
                  " as resize_and_crop)");
    std::memcpy(destination + i * item_bytes, item.raw_data(), item_bytes);
  }
  return out;
}

void check_ranks(int rank, int world_size) {
  PIXGRAD_CHECK(world_size >= 1 && rank >= 0 && rank < world_size, "DataLoader: rank ", rank, " is not one of the ",
                world_size, " ranks of this run (need world_size >= 1 and 0 <= rank < world_size)");
}

// Where rank `rank`'s chunk of a global batch of `size` starts, and its length:
// the first size % world_size ranks take one more, so chunks differ by at most one.
std::pair<size_t, size_t> rank_chunk(size_t size, int rank, int world_size) {
  const size_t r = static_cast<size_t>(rank);
  const size_t base = size / static_cast<size_t>(world_size);
  const size_t extra = size % static_cast<size_t>(world_size);
  return {r * base + std::min(r, extra), base + (r < extra ? 1 : 0)};
}

}  // namespace

std::vector<size_t> global_batch_sizes(size_t size, size_t batch_size, int world_size, bool drop_last) {
  PIXGRAD_CHECK(batch_size >= 1 && world_size >= 1, "DataLoader: need batch_size >= 1 and world_size >= 1, got ",
                batch_size, " and ", world_size);
  const size_t ranks = static_cast<size_t>(world_size);
  // A rank with nothing to load would have no gradient to contribute to the step.
  // (On one rank an empty dataset just makes no batches, as it always has.)
  PIXGRAD_CHECK(ranks == 1 || size >= ranks, "DataLoader: the dataset has ", size, " examples, fewer than the ",
                ranks, " ranks of this run");
  const size_t global = batch_size * ranks;
  std::vector<size_t> sizes(size / global, global);
  const size_t rest = size % global;
  if (rest == 0 || drop_last) return sizes;
  // Too few to give every rank one: size >= ranks guarantees a batch before to join.
  if (rest < ranks) sizes.back() += rest;
  else sizes.push_back(rest);
  return sizes;
}

std::vector<std::vector<size_t>> rank_batches(const std::vector<size_t>& order, size_t batch_size, int rank,
                                              int world_size, bool drop_last) {
  check_ranks(rank, world_size);
  std::vector<std::vector<size_t>> batches;
  size_t begin = 0;
  for (size_t global : global_batch_sizes(order.size(), batch_size, world_size, drop_last)) {
    const auto [offset, count] = rank_chunk(global, rank, world_size);
    const auto first = order.begin() + static_cast<std::ptrdiff_t>(begin + offset);
    batches.emplace_back(first, first + static_cast<std::ptrdiff_t>(count));
    begin += global;
  }
  return batches;
}

std::vector<size_t> epoch_order(size_t size, uint64_t seed, uint64_t epoch, bool shuffle) {
  std::vector<size_t> order(size);
  for (size_t i = 0; i < size; ++i) order[i] = i;
  if (!shuffle) return order;
  const philox::Block key = philox::block(seed, epoch);
  const uint64_t shuffle_key = join_words(key.word[2], key.word[3]);
  for (size_t i = size; i > 1; --i) {
    const philox::Block draw = philox::block(shuffle_key, i);
    std::swap(order[i - 1], order[join_words(draw.word[0], draw.word[1]) % i]);
  }
  return order;
}

uint64_t epoch_augmentation_seed(uint64_t seed, uint64_t epoch) {
  const philox::Block key = philox::block(seed, epoch);
  return join_words(key.word[0], key.word[1]);
}

Batch collate(const std::vector<Example>& examples) {
  PIXGRAD_CHECK(!examples.empty(), "DataLoader: cannot collate an empty batch");
  Batch batch;
  batch.input = stack(examples, &Example::input, "input");
  if (examples.front().target.defined()) batch.target = stack(examples, &Example::target, "target");
  for (const Example& example : examples) {
    PIXGRAD_CHECK(example.target.defined() == batch.target.defined(), "DataLoader: '", example.name,
                  "' and '", examples.front().name, "' disagree on having a target");
    batch.names.push_back(example.name);
  }
  return batch;
}

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, LoaderOptions options)
    : dataset_(std::move(dataset)), options_(options) {
  PIXGRAD_CHECK(dataset_ != nullptr, "DataLoader: no dataset");
  PIXGRAD_CHECK(options_.batch_size >= 1 && options_.num_workers >= 0 && options_.prefetch >= 1,
                "DataLoader: need batch_size >= 1, num_workers >= 0 and prefetch >= 1, got ", options_.batch_size,
                ", ", options_.num_workers, " and ", options_.prefetch);
  check_ranks(options_.rank, options_.world_size);
  PIXGRAD_CHECK(batches_per_epoch() > 0, "DataLoader: ", dataset_->size(), " examples make no batch of ",
                options_.batch_size * static_cast<size_t>(options_.world_size), " with drop_last");
}

DataLoader::~DataLoader() { stop_workers(); }

size_t DataLoader::batches_per_epoch() const {
  return global_batch_sizes(dataset_->size(), options_.batch_size, options_.world_size, options_.drop_last).size();
}

void DataLoader::start_epoch(uint64_t epoch, size_t skip_batches) {
  const size_t count = batches_per_epoch();
  PIXGRAD_CHECK(skip_batches <= count, "DataLoader: cannot skip ", skip_batches, " batches of an epoch of ", count);
  stop_workers();
  const std::vector<size_t> order = epoch_order(dataset_->size(), options_.seed, epoch, options_.shuffle);
  batches_ = rank_batches(order, options_.batch_size, options_.rank, options_.world_size, options_.drop_last);
  global_sizes_ = global_batch_sizes(order.size(), options_.batch_size, options_.world_size, options_.drop_last);
  epoch_ = epoch;
  augmentation_seed_ = epoch_augmentation_seed(options_.seed, epoch);
  next_batch_ = next_claim_ = skip_batches;
  started_ = true;
  const size_t threads = std::min(static_cast<size_t>(options_.num_workers), count - skip_batches);
  for (size_t t = 0; t < threads; ++t) workers_.emplace_back(&DataLoader::worker, this);
}

Batch DataLoader::load_batch(size_t batch) const {
  std::vector<Example> examples;
  for (size_t index : batches_[batch]) examples.push_back(dataset_->get(index, augmentation_seed_));
  Batch out = collate(examples);
  out.global_samples = static_cast<int64_t>(global_sizes_[batch]);
  return out;
}

void DataLoader::worker() {
  // Workers run beside the training step, which already uses every core
  // through OpenMP; a worker's own OpenMP regions stay single-threaded.
  omp_set_num_threads(1);
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    work_available_.wait(lock, [&] {
      return stopping_ || next_claim_ >= batches_.size() ||
             next_claim_ < next_batch_ + static_cast<size_t>(options_.prefetch);
    });
    if (stopping_ || next_claim_ >= batches_.size()) return;
    const size_t batch = next_claim_++;
    lock.unlock();
    Slot slot;
    try {
      slot.batch = load_batch(batch);
    } catch (...) {
      slot.error = std::current_exception();
    }
    lock.lock();
    ready_.emplace(batch, std::move(slot));
    batch_ready_.notify_all();
  }
}

std::optional<Batch> DataLoader::next() {
  PIXGRAD_CHECK(started_, "DataLoader: call start_epoch() before next()");
  if (next_batch_ >= batches_.size()) return std::nullopt;
  if (workers_.empty()) return load_batch(next_batch_++);
  Slot slot;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    batch_ready_.wait(lock, [&] { return ready_.count(next_batch_) != 0; });
    const auto found = ready_.find(next_batch_);
    slot = std::move(found->second);
    ready_.erase(found);
    ++next_batch_;
  }
  work_available_.notify_all();
  if (slot.error) std::rethrow_exception(slot.error);
  return std::move(slot.batch);
}

void DataLoader::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  work_available_.notify_all();
  for (std::thread& thread : workers_) thread.join();
  workers_.clear();
  ready_.clear();
  stopping_ = false;
}

}  // namespace pixgrad::data
