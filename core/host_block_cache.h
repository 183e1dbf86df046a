// Host memory for tensors, with large blocks kept for reuse.
//
// A training step frees and allocates the same large activations and
// gradients every iteration. glibc serves each of them with a fresh mmap and
// returns it with munmap, so every step pays a page fault and a page clear
// for every 4 KiB it touches (about a tenth of a CPU step, measured with perf
// on the paper preset). Blocks of at least kMinCachedBytes are kept on free
// lists by size class instead and handed back to the next request of that
// class. Size classes are four per power of two, so a request wastes at most
// a quarter of its size.
//
// Bounds: the cache holds at most PIXGRAD_HOST_CACHE_MIB mebibytes of free
// blocks (default 4096; 0 turns the cache off); a block that would pass the
// bound is released at once. When an allocation fails, every cached block is
// released and the allocation tried once more. Builds with AddressSanitizer
// never cache, so that a use after free is still caught.
#pragma once

#include <cstddef>

namespace pixgrad {

// 64-byte aligned; `bytes` 0 gives a valid one-line block. Throws a one-line
// error when the memory is not there.
void* host_block_allocate(size_t bytes);
void host_block_free(void* pointer);

// Free blocks held now, in bytes, and a release of all of them (tests, and
// programs that want their memory back between phases).
size_t host_block_cache_bytes();
void host_block_cache_release();

}  // namespace pixgrad
