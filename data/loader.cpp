// The batch pipeline; loader.h describes the threading model.
#include <pixgrad/data/loader.h>

#include <omp.h>

#include <algorithm>
#include <cstring>

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

}  // namespace

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
  PIXGRAD_CHECK(batches_per_epoch() > 0, "DataLoader: ", dataset_->size(), " examples make no batch of ",
                options_.batch_size, " with drop_last");
}

DataLoader::~DataLoader() { stop_workers(); }

size_t DataLoader::batches_per_epoch() const {
  const size_t size = dataset_->size();
  return options_.drop_last ? size / options_.batch_size : (size + options_.batch_size - 1) / options_.batch_size;
}

void DataLoader::start_epoch(uint64_t epoch, size_t skip_batches) {
  const size_t count = batches_per_epoch();
  PIXGRAD_CHECK(skip_batches <= count, "DataLoader: cannot skip ", skip_batches, " batches of an epoch of ", count);
  stop_workers();
  const std::vector<size_t> order = epoch_order(dataset_->size(), options_.seed, epoch, options_.shuffle);
  batches_.assign(count, {});
  for (size_t b = 0; b < count; ++b) {
    const size_t begin = b * options_.batch_size;
    const size_t end = std::min(order.size(), begin + options_.batch_size);
    batches_[b].assign(order.begin() + begin, order.begin() + end);
  }
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
  return collate(examples);
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
