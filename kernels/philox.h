// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
// SC 2011): a counter-based generator. Number i of a stream is a pure function
// of (seed, counter), so the CPU and the CUDA kernels draw identical numbers
// for the same seed and offset, in any order and on any number of threads.
//
// Layout used throughout pixgrad: a Generator's offset counts 128-bit blocks.
// Element i of a uniform draw uses block (offset + i / 4), word i % 4; element
// i of a normal draw uses block (offset + i / 2) through Box-Muller on words
// 0,1 (even i) or 2,3 (odd i).
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define PIXGRAD_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define PIXGRAD_HOST_DEVICE inline
#endif

namespace pixgrad::philox {

struct Block {
  uint32_t word[4];
};

PIXGRAD_HOST_DEVICE void mulhilo(uint32_t a, uint32_t b, uint32_t* hi, uint32_t* lo) {
  const uint64_t product = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(product >> 32);
  *lo = static_cast<uint32_t>(product);
}

// The raw 4x32-10 bijection on a 128-bit counter under a 64-bit key.
PIXGRAD_HOST_DEVICE Block philox4x32_10(Block counter, uint32_t key0, uint32_t key1) {
  constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    mulhilo(kMul0, counter.word[0], &hi0, &lo0);
    mulhilo(kMul1, counter.word[2], &hi1, &lo1);
    counter = Block{{hi1 ^ counter.word[1] ^ key0, lo1, hi0 ^ counter.word[3] ^ key1, lo0}};
    key0 += kWeyl0;
    key1 += kWeyl1;
  }
  return counter;
}

// Block number `index` of the stream of `seed`.
PIXGRAD_HOST_DEVICE Block block(uint64_t seed, uint64_t index) {
  Block counter{{static_cast<uint32_t>(index), static_cast<uint32_t>(index >> 32), 0u, 0u}};
  return philox4x32_10(counter, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// 24 random bits -> a float in [0, 1), exactly representable.
PIXGRAD_HOST_DEVICE float to_unit_float(uint32_t bits) { return static_cast<float>(bits >> 8) * (1.0f / 16777216.0f); }

// Dropout's factor for one random word: `keep` (1 / (1 - p) in the caller's
// type) when its uniform number is >= threshold (float(p)), else 0. Every
// dropout mask, separate or fused into a norm, on either device, is this.
template <typename T>
PIXGRAD_HOST_DEVICE T dropout_factor(uint32_t word, float threshold, T keep) {
  return to_unit_float(word) >= threshold ? keep : T(0);
}

// Uniform [0, 1) number i of the stream starting at block `offset`.
PIXGRAD_HOST_DEVICE float uniform(uint64_t seed, uint64_t offset, uint64_t i) {
  return to_unit_float(block(seed, offset + i / 4).word[i % 4]);
}

// Standard normal number i of the stream starting at block `offset`.
PIXGRAD_HOST_DEVICE float normal(uint64_t seed, uint64_t offset, uint64_t i) {
  const Block b = block(seed, offset + i / 2);
  const uint32_t first = (i % 2 == 0) ? b.word[0] : b.word[2];
  const uint32_t second = (i % 2 == 0) ? b.word[1] : b.word[3];
  // u1 in (0, 1] keeps the logarithm finite.
  const float u1 = (static_cast<float>(first >> 8) + 1.0f) * (1.0f / 16777216.0f);
  const float u2 = to_unit_float(second);
  return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853071795864769f * u2);
}

// Blocks a draw of n uniform / normal numbers consumes.
PIXGRAD_HOST_DEVICE uint64_t uniform_blocks(uint64_t n) { return (n + 3) / 4; }
PIXGRAD_HOST_DEVICE uint64_t normal_blocks(uint64_t n) { return (n + 1) / 2; }

}  // namespace pixgrad::philox
