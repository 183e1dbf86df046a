// DataLoader: batches of a Dataset, decoded and augmented ahead of time on
// background threads.
//
// Threading model. start_epoch() fixes the epoch's batch list (a Philox
// shuffle of (seed, epoch)) and starts `num_workers` threads. Each worker
// claims the lowest unclaimed batch number, but only while it is fewer than
// `prefetch` batches ahead of the consumer, builds it without holding the
// lock, and files it (or the exception it threw) under its number. next()
// waits for the batch it is due, so batches arrive in order whatever thread
// finished first, and memory stays bounded by `prefetch` batches. A worker
// exits when every batch of the epoch is claimed or when the loader stops;
// start_epoch() and the destructor stop and join them, so nothing outlives
// the loader. Dataset::get() runs concurrently and must be thread-safe
// (the datasets in datasets.h hold no mutable state).
//
// Determinism. The order depends only on (seed, epoch) and each example on
// (index, epoch seed), never on thread timing: start_epoch(e, k) continues a
// run interrupted after k batches of epoch e exactly.
//
// Sharding. In a data-parallel run every rank computes the same order and
// cuts it into the same global batches of batch_size * world_size; each rank
// loads only its own contiguous chunk of each, so an epoch reads every example
// once across the ranks and every rank takes the same number of steps. A last
// global batch too small to give each rank an example joins the one before.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <pixgrad/core/tensor.h>
#include <pixgrad/data/datasets.h>

namespace pixgrad::data {

struct Batch {
  Tensor input;   // [B, C, H, W]
  Tensor target;  // [B, C, H, W]; undefined when the dataset has no targets
  std::vector<std::string> names;
  // Examples in the whole global batch across the ranks (input.size(0) on one
  // rank): a rank weights its gradient by its share of them.
  int64_t global_samples = 0;
};

struct LoaderOptions {
  size_t batch_size = 1;
  bool shuffle = true;
  uint64_t seed = 0;
  int num_workers = 2;  // 0 loads on the calling thread, inside next()
  int prefetch = 4;     // batches decoded ahead of the consumer, at most
  bool drop_last = false;  // leaves out a last global batch smaller than batch_size * world_size
  // This process's place in a data-parallel run: it loads the rank-th share of
  // each global batch. The defaults make one process load everything.
  int rank = 0;
  int world_size = 1;
};

// The order in which an epoch visits the dataset: 0..size-1, Fisher-Yates
// shuffled with Philox draws keyed by (seed, epoch) when `shuffle`.
std::vector<size_t> epoch_order(size_t size, uint64_t seed, uint64_t epoch, bool shuffle);
// The number of examples in each global batch of an epoch of `size` examples:
// batch_size * world_size each, but a last one too small to give every rank
// an example merged into the one before (or dropped, with drop_last, when
// short of a full one). Refuses fewer examples than ranks.
std::vector<size_t> global_batch_sizes(size_t size, size_t batch_size, int world_size, bool drop_last);
// This rank's dataset indices for each global batch of `order`: contiguous
// chunks in rank order, sizes within one of each other, the larger first.
std::vector<std::vector<size_t>> rank_batches(const std::vector<size_t>& order, size_t batch_size, int rank,
                                              int world_size, bool drop_last);
// The seed the loader passes to Dataset::get in this epoch, so crops differ between epochs.
uint64_t epoch_augmentation_seed(uint64_t seed, uint64_t epoch);
// Stacks examples of equal shapes into one batch. Examples of different sizes
// (--preprocess none or scale_width) are refused, naming two of them.
Batch collate(const std::vector<Example>& examples);

class DataLoader {
 public:
  DataLoader(std::shared_ptr<const Dataset> dataset, LoaderOptions options);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  // Global batches per epoch, the same on every rank.
  size_t batches_per_epoch() const;
  // Begins `epoch` with its first `skip_batches` global batches left out
  // (resuming), so every rank of a run resumes at the same step.
  void start_epoch(uint64_t epoch, size_t skip_batches = 0);
  // The next batch of the epoch, or nothing at its end. Rethrows what loading it threw.
  std::optional<Batch> next();
  uint64_t epoch() const { return epoch_; }
  // Batches of this epoch handed out so far (skipped ones included): what a checkpoint stores.
  size_t batches_done() const { return next_batch_; }

 private:
  struct Slot {
    std::optional<Batch> batch;
    std::exception_ptr error;
  };
  Batch load_batch(size_t batch) const;
  void worker();
  void stop_workers();

  std::shared_ptr<const Dataset> dataset_;
  LoaderOptions options_;
  uint64_t epoch_ = 0;
  uint64_t augmentation_seed_ = 0;
  bool started_ = false;
  std::vector<std::vector<size_t>> batches_;  // dataset indices of this rank's share of each batch of the epoch
  std::vector<size_t> global_sizes_;          // examples in each global batch, across the ranks

  std::mutex mutex_;
  std::condition_variable work_available_;  // workers wait: window moved, or stop
  std::condition_variable batch_ready_;     // next() waits: a slot was filed
  size_t next_batch_ = 0;                   // the batch next() returns next
  size_t next_claim_ = 0;                   // the batch a worker claims next
  std::map<size_t, Slot> ready_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace pixgrad::data
