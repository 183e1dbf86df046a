// FNV-1a, a 64-bit hash of bytes for fingerprints: it tells values apart, it
// does not guard against an adversary. The ranks' agreements
// (distributed/agreement.cpp) and a dataset's list of files (data/) use it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace pixgrad {

constexpr uint64_t kFnv1aOffset = 14695981039346656037ull;
constexpr uint64_t kFnv1aPrime = 1099511628211ull;

// `hash` carried on over `bytes` bytes at `data`, one byte a step.
inline uint64_t fnv1a(const void* data, size_t bytes, uint64_t hash = kFnv1aOffset) {
  const auto* byte = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < bytes; ++i) hash = (hash ^ byte[i]) * kFnv1aPrime;
  return hash;
}

// The same, eight bytes a step (a machine word, then the last bytes one at a
// time): a different hash, eight times fewer multiplications for the
// hundreds of megabytes of a parameter set.
inline uint64_t fnv1a_words(const void* data, size_t bytes, uint64_t hash = kFnv1aOffset) {
  const auto* byte = static_cast<const unsigned char*>(data);
  const size_t whole = bytes / 8 * 8;
  for (size_t i = 0; i < whole; i += 8) {
    uint64_t word;
    std::memcpy(&word, byte + i, 8);
    hash = (hash ^ word) * kFnv1aPrime;
  }
  return fnv1a(byte + whole, bytes - whole, hash);
}

}  // namespace pixgrad
