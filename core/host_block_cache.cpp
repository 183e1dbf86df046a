#include <pixgrad/core/host_block_cache.h>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

#include <pixgrad/core/error.h>

#if defined(__SANITIZE_ADDRESS__)
#define PIXGRAD_HOST_CACHE_AVAILABLE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PIXGRAD_HOST_CACHE_AVAILABLE 0
#endif
#endif
#ifndef PIXGRAD_HOST_CACHE_AVAILABLE
#define PIXGRAD_HOST_CACHE_AVAILABLE 1
#endif

namespace pixgrad {
namespace {

// 64 bytes: one cache line, and a full AVX-512 vector.
constexpr size_t kAlignment = 64;
// Below this glibc keeps blocks in its own heap without unmapping them.
constexpr size_t kMinCachedBytes = size_t{256} << 10;

size_t round_to_alignment(size_t bytes) {
  return bytes == 0 ? kAlignment : (bytes + kAlignment - 1) / kAlignment * kAlignment;
}

// Four classes per power of two: the size rounded up to a quarter of its
// highest power of two.
size_t size_class(size_t bytes) {
  int top = 63;
  while (!(bytes >> top)) --top;
  const size_t quarter = size_t{1} << (top - 2);
  return (bytes + quarter - 1) / quarter * quarter;
}

size_t limit_from_environment() {
  if (!PIXGRAD_HOST_CACHE_AVAILABLE) return 0;
  const char* text = std::getenv("PIXGRAD_HOST_CACHE_MIB");
  if (!text || !*text) return size_t{4096} << 20;
  char* end = nullptr;
  const unsigned long long mib = std::strtoull(text, &end, 10);
  PIXGRAD_CHECK(*end == '\0' && mib <= (uint64_t{1} << 30), "PIXGRAD_HOST_CACHE_MIB='", text,
                "': expected a whole number of mebibytes (0 turns the host block cache off)");
  return static_cast<size_t>(mib) << 20;
}

class BlockCache {
 public:
  void* allocate(size_t bytes) {
    const size_t rounded = round_to_alignment(bytes);
    if (rounded < kMinCachedBytes || limit_ == 0) return fresh(rounded, bytes);
    const size_t size = size_class(rounded);
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      const auto found = free_.find(size);
      if (found != free_.end()) {
        void* pointer = found->second;
        free_.erase(found);
        cached_bytes_ -= size;
        live_[pointer] = size;
        return pointer;
      }
    }
    void* pointer = fresh(size, bytes);
    const std::lock_guard<std::mutex> lock(mutex_);
    live_[pointer] = size;
    return pointer;
  }

  void release(void* pointer) {
    if (!pointer) return;
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      const auto found = live_.find(pointer);
      if (found != live_.end()) {
        const size_t size = found->second;
        live_.erase(found);
        if (cached_bytes_ + size <= limit_) {
          free_.emplace(size, pointer);
          cached_bytes_ += size;
          return;
        }
      }
    }
    std::free(pointer);
  }

  size_t cached_bytes() {
    const std::lock_guard<std::mutex> lock(mutex_);
    return cached_bytes_;
  }

  void release_all() {
    std::multimap<size_t, void*> blocks;
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      blocks.swap(free_);
      cached_bytes_ = 0;
    }
    for (const auto& block : blocks) std::free(block.second);
  }

 private:
  void* fresh(size_t size, size_t requested) {
    void* pointer = std::aligned_alloc(kAlignment, size);
    if (!pointer && cached_bytes() > 0) {
      release_all();
      pointer = std::aligned_alloc(kAlignment, size);
    }
    if (!pointer) fail("cpu: cannot allocate ", requested, " bytes");
    return pointer;
  }

  std::mutex mutex_;
  const size_t limit_ = limit_from_environment();
  size_t cached_bytes_ = 0;
  std::multimap<size_t, void*> free_;        // size class -> free block
  std::unordered_map<void*, size_t> live_;   // cached-class blocks in use -> size class
};

// Never destroyed: tensors held by other static objects may be freed after
// any destructor of this file would have run.
BlockCache& cache() {
  static BlockCache* const instance = new BlockCache;
  return *instance;
}

}  // namespace

void* host_block_allocate(size_t bytes) { return cache().allocate(bytes); }
void host_block_free(void* pointer) { cache().release(pointer); }
size_t host_block_cache_bytes() { return cache().cached_bytes(); }
void host_block_cache_release() { cache().release_all(); }

}  // namespace pixgrad
