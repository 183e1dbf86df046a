// The CUDA device backend: device discovery, one stream per device, a caching
// allocator, and host<->device copies through pinned staging.
//
// Allocator: tensors are freed and reallocated with the same sizes every
// training iteration, so freed blocks are kept in per-device free lists keyed
// by their (rounded) size and handed out again; after the first iteration a
// step makes no cudaMalloc or cudaFree. Reuse is safe without events because
// every kernel and copy of a device runs on that device's single stream: work
// queued before the free finishes before work queued after the reuse.
//
// Graph pools: while a CUDA graph is captured (core/cuda_graph.h) the device's
// allocations come from a pool private to that graph, and every block freed
// meanwhile joins it. The graph's kernels use those addresses at every
// replay, so the pool's blocks go to nobody else until the graph is gone;
// inside the capture they are reused in stream order, as above.
//
// Copies: pageable host memory cannot be copied asynchronously, so copies go
// through one pinned staging buffer per device, in chunks, synchronising the
// stream before the staging buffer is reused (core/staging.h). A copy holds
// the buffer from its first chunk to its last, so copies from several host
// threads at once take turns instead of corrupting each other.
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include <pixgrad/core/cuda_info.h>
#include <pixgrad/core/error.h>
#include <pixgrad/core/staging.h>
#include <pixgrad/core/storage.h>
#include <pixgrad/kernels/cuda/runtime.cuh>
#include <pixgrad/kernels/cuda/workspace.h>

namespace pixgrad {

bool built_with_cuda() { return true; }

int cuda_device_count(std::string* reason) {
  // The answer cannot change during a run; ask the runtime once.
  static std::once_flag once;
  static int count = 0;
  static std::string why;
  std::call_once(once, [] {
    const cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess) {
      count = 0;
      why = cudaGetErrorString(status);
      cudaGetLastError();  // clear the sticky error so later queries start clean
    } else if (count == 0) {
      why = "no CUDA device found";
    }
  });
  if (reason) *reason = why;
  return count;
}

namespace {

constexpr int kMaxDevices = 16;
constexpr size_t kRounding = 512;                  // allocation granularity
constexpr size_t kStagingChunk = size_t{64} << 20;  // pinned staging buffer size

size_t round_up(size_t bytes) { return std::max<size_t>(kRounding, (bytes + kRounding - 1) / kRounding * kRounding); }

using FreeBlocks = std::multimap<size_t, void*>;  // size -> block

struct DeviceState {
  std::mutex mutex;
  cudaStream_t stream = nullptr;
  FreeBlocks free_blocks;               // the shared cache
  std::map<void*, size_t> block_sizes;  // every block we own
  std::map<void*, int> block_pools;     // blocks of live graph pools -> pool
  std::map<int, FreeBlocks> pool_free;  // each live graph pool's free blocks
  int capturing_pool = 0;               // the pool of the graph being captured, 0 if none
  int last_pool = 0;
  CudaMemoryStats stats;
  StagingBuffer staging{kStagingChunk, [](size_t bytes) {
                          void* pinned = nullptr;
                          PIXGRAD_CUDA_CHECK(cudaMallocHost(&pinned, bytes));
                          return pinned;
                        }};
};

DeviceState& state(int index) {
  static DeviceState states[kMaxDevices];
  PIXGRAD_CHECK(index >= 0 && index < kMaxDevices, "cuda: device index ", index, " out of range");
  return states[index];
}

thread_local int active_device = -1;

cudaStream_t stream_of(int index) {
  DeviceState& s = state(index);
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!s.stream) PIXGRAD_CUDA_CHECK(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking));
  return s.stream;
}

// cudaMalloc, allowed while this thread captures a graph: the block is not
// part of the graph, and the pool keeps it for as long as the graph lives.
cudaError_t malloc_outside_capture(void** block, size_t size) {
  cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
  PIXGRAD_CUDA_CHECK(cudaThreadExchangeStreamCaptureMode(&mode));
  const cudaError_t status = cudaMalloc(block, size);
  PIXGRAD_CUDA_CHECK(cudaThreadExchangeStreamCaptureMode(&mode));
  return status;
}

// The smallest block of `blocks` that fits `size`, if it wastes at most half of itself.
void* take_block(FreeBlocks& blocks, size_t size) {
  const auto found = blocks.lower_bound(size);
  if (found == blocks.end() || found->first > 2 * size) return nullptr;
  void* block = found->second;
  blocks.erase(found);
  return block;
}

void* device_allocate(size_t bytes, int index) {
  cuda_activate(index);
  const size_t size = round_up(bytes);
  DeviceState& s = state(index);
  std::lock_guard<std::mutex> lock(s.mutex);
  const int pool = s.capturing_pool;
  void* block = take_block(pool ? s.pool_free[pool] : s.free_blocks, size);
  if (block) {
    s.stats.bytes_cached -= static_cast<int64_t>(s.block_sizes[block]);
  } else {
    cudaError_t status = malloc_outside_capture(&block, size);
    // (Not during a capture: cudaFree would end it.)
    if (status == cudaErrorMemoryAllocation && !s.free_blocks.empty() && !pool) {
      // Out of memory: give the cache back and try once more.
      cudaGetLastError();
      for (auto& [cached_size, cached] : s.free_blocks) {
        PIXGRAD_CUDA_CHECK(cudaFree(cached));
        s.block_sizes.erase(cached);
        ++s.stats.device_frees;
      }
      s.free_blocks.clear();
      s.stats.bytes_cached = 0;
      for (const auto& [pool_id, blocks] : s.pool_free)
        for (const auto& [cached_size, cached] : blocks) s.stats.bytes_cached += static_cast<int64_t>(cached_size);
      status = malloc_outside_capture(&block, size);
    }
    if (status != cudaSuccess) {
      cudaGetLastError();
      fail("cuda:", index, ": cannot allocate ", bytes, " bytes (", cudaGetErrorString(status), "; ",
           s.stats.bytes_in_use, " bytes in use)");
    }
    ++s.stats.device_mallocs;
    s.block_sizes[block] = size;
    if (pool) s.block_pools[block] = pool;
  }
  s.stats.bytes_in_use += static_cast<int64_t>(s.block_sizes[block]);
  s.stats.peak_bytes_in_use = std::max(s.stats.peak_bytes_in_use, s.stats.bytes_in_use);
  return block;
}

void device_deallocate(void* pointer, int index) {
  // Destructors must not throw: the block just goes back to the cache.
  DeviceState& s = state(index);
  std::lock_guard<std::mutex> lock(s.mutex);
  const auto known = s.block_sizes.find(pointer);
  if (known == s.block_sizes.end()) return;
  s.stats.bytes_in_use -= static_cast<int64_t>(known->second);
  s.stats.bytes_cached += static_cast<int64_t>(known->second);
  // A block freed during a capture may still be read by the graph: it joins
  // the pool (a block of another live graph's pool stays in that one).
  if (s.capturing_pool && !s.block_pools.count(pointer)) s.block_pools[pointer] = s.capturing_pool;
  const auto pool = s.block_pools.find(pointer);
  (pool == s.block_pools.end() ? s.free_blocks : s.pool_free[pool->second]).emplace(known->second, pointer);
}

void refuse_while_capturing(DeviceState& s, const char* what) {
  std::lock_guard<std::mutex> lock(s.mutex);
  PIXGRAD_CHECK(!s.capturing_pool, what, " cannot run while a CUDA graph is being captured: the captured step must not "
                                   "wait for the device (read results after a replay)");
}

// The device side of a staged copy (core/staging.h): the device's stream.
struct StreamCopies {
  cudaStream_t stream;
  void copy_to_staging(void* staging, const void* source, size_t bytes) {
    PIXGRAD_CUDA_CHECK(cudaMemcpyAsync(staging, source, bytes, cudaMemcpyDeviceToHost, stream));
  }
  void copy_from_staging(void* destination, const void* staging, size_t bytes) {
    PIXGRAD_CUDA_CHECK(cudaMemcpyAsync(destination, staging, bytes, cudaMemcpyHostToDevice, stream));
  }
  void wait() { PIXGRAD_CUDA_CHECK(cudaStreamSynchronize(stream)); }
};

void device_copy_to_host(void* host_destination, const void* source, size_t bytes, int index) {
  refuse_while_capturing(state(index), "a copy to the host");
  cuda_activate(index);
  StreamCopies copies{stream_of(index)};
  state(index).staging.to_host(host_destination, source, bytes, copies);
}

void device_copy_from_host(void* destination, const void* host_source, size_t bytes, int index) {
  refuse_while_capturing(state(index), "a copy from the host");
  cuda_activate(index);
  StreamCopies copies{stream_of(index)};
  state(index).staging.from_host(destination, host_source, bytes, copies);
}

void device_copy_on_device(void* destination, const void* source, size_t bytes, int index) {
  cuda_activate(index);
  PIXGRAD_CUDA_CHECK(cudaMemcpyAsync(destination, source, bytes, cudaMemcpyDeviceToDevice, stream_of(index)));
}

}  // namespace

void cuda_activate(int index) {
  if (active_device == index) return;
  PIXGRAD_CUDA_CHECK(cudaSetDevice(index));
  active_device = index;
}

void synchronize(const Device& device) {
  if (!device.is_cuda()) return;
  refuse_while_capturing(state(device.index()), "synchronize");
  cuda_activate(device.index());
  PIXGRAD_CUDA_CHECK(cudaStreamSynchronize(stream_of(device.index())));
}

CudaMemoryStats cuda_memory_stats(int index) {
  DeviceState& s = state(index);
  std::lock_guard<std::mutex> lock(s.mutex);
  return s.stats;
}

void cuda_empty_cache() {
  for (int index = 0; index < std::min(kMaxDevices, cuda_device_count()); ++index) {
    DeviceState& s = state(index);
    std::lock_guard<std::mutex> lock(s.mutex);
    if (s.free_blocks.empty()) continue;
    cuda_activate(index);
    if (s.stream) PIXGRAD_CUDA_CHECK(cudaStreamSynchronize(s.stream));
    for (auto& [size, block] : s.free_blocks) {
      PIXGRAD_CUDA_CHECK(cudaFree(block));
      s.block_sizes.erase(block);
      s.stats.bytes_cached -= static_cast<int64_t>(size);
      ++s.stats.device_frees;
    }
    s.free_blocks.clear();  // graph pools keep theirs
  }
}

namespace cuda {

int begin_graph_pool(int index) {
  DeviceState& s = state(index);
  std::lock_guard<std::mutex> lock(s.mutex);
  PIXGRAD_CHECK(!s.capturing_pool, "cuda:", index, ": a CUDA graph is being captured already");
  s.capturing_pool = ++s.last_pool;
  s.pool_free[s.capturing_pool];
  return s.capturing_pool;
}

void end_graph_pool_capture(int index) {
  DeviceState& s = state(index);
  std::lock_guard<std::mutex> lock(s.mutex);
  s.capturing_pool = 0;
}

void release_graph_pool(int index, int pool) {
  DeviceState& s = state(index);
  std::lock_guard<std::mutex> lock(s.mutex);
  // Free blocks go back to the shared cache; blocks still held by tensors go
  // there when those are freed.
  for (const auto& [size, block] : s.pool_free[pool]) s.free_blocks.emplace(size, block);
  s.pool_free.erase(pool);
  for (auto it = s.block_pools.begin(); it != s.block_pools.end();)
    it = it->second == pool ? s.block_pools.erase(it) : std::next(it);
}

}  // namespace cuda

namespace kernels::cuda {

Workspace::Workspace(size_t bytes) {
  if (bytes == 0) return;
  device_ = ::pixgrad::cuda::current_device();
  data_ = device_allocate(bytes, device_);
}

Workspace::~Workspace() {
  if (data_) device_deallocate(data_, device_);
}

Workspace::Workspace(Workspace&& other) noexcept : data_(other.data_), device_(other.device_) {
  other.data_ = nullptr;
}

Workspace& Workspace::operator=(Workspace&& other) noexcept {
  if (this != &other) {
    if (data_) device_deallocate(data_, device_);
    data_ = other.data_;
    device_ = other.device_;
    other.data_ = nullptr;
  }
  return *this;
}

}  // namespace kernels::cuda

namespace cuda {

int current_device() {
  if (active_device < 0) cuda_activate(0);
  return active_device;
}

cudaStream_t current_stream() { return stream_of(current_device()); }

namespace {
std::atomic<int64_t> kernel_launches{0};
}  // namespace

void count_kernel_launch() { kernel_launches.fetch_add(1, std::memory_order_relaxed); }

}  // namespace cuda

int64_t cuda_kernel_launches() { return cuda::kernel_launches.load(std::memory_order_relaxed); }

const DeviceBackend& cuda_backend() {
  static const DeviceBackend backend{device_allocate, device_deallocate, device_copy_to_host, device_copy_from_host,
                                     device_copy_on_device};
  return backend;
}

}  // namespace pixgrad
