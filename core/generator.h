// A seed and a position in its Philox stream. Every random op reserves the
// blocks it needs and advances the offset, so a run is reproducible from
// (seed, offset) alone — which is what a checkpoint stores to resume exactly.
#pragma once

#include <cstdint>

namespace pixgrad {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0, uint64_t offset = 0) : seed_(seed), offset_(offset) {}

  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_state(uint64_t seed, uint64_t offset) {
    seed_ = seed;
    offset_ = offset;
  }

  // Returns the first block of a fresh range of `blocks` blocks.
  uint64_t reserve(uint64_t blocks) {
    const uint64_t first = offset_;
    offset_ += blocks;
    return first;
  }

 private:
  uint64_t seed_;
  uint64_t offset_;
};

// The process-wide generator used when an op is not given one.
Generator& default_generator();
void manual_seed(uint64_t seed);

}  // namespace pixgrad
