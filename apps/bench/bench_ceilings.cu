// The benchmarks' GPU helpers (bench_ceilings.h): two ceilings, event timing
// and a busy-wait.
//
// FMA ceiling: every thread runs kChains independent chains a = a * b + c.
// Eight chains per thread and 2048 threads per multiprocessor keep every FP32
// pipe fed despite the FMA latency; nothing touches memory inside the loop.
// b and c come in as arguments and the result is stored under a condition
// that never holds, so the compiler can neither fold nor drop the chains.
//
// Copy ceiling: one cudaMemcpyAsync device to device, the same path
// pixgrad's concat copies take; the source is filled with a non-zero byte
// pattern first.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "bench_ceilings.h"
#include <pixgrad/kernels/cuda/runtime.cuh>

namespace pixgrad::bench {

namespace {

constexpr int kChains = 8;
constexpr int kFmaIterations = 16384;
constexpr int kFmaThreads = 256;
constexpr int kFmaBlocksPerMultiprocessor = 8;

__global__ void fma_chains(float b, float c, int iterations, float* sink) {
  float a[kChains];
#pragma unroll
  for (int k = 0; k < kChains; ++k) a[k] = 1.0f + 1e-3f * static_cast<float>(k + threadIdx.x % 7);
  for (int i = 0; i < iterations; ++i) {
#pragma unroll
    for (int k = 0; k < kChains; ++k) a[k] = fmaf(a[k], b, c);
  }
  float sum = 0;
#pragma unroll
  for (int k = 0; k < kChains; ++k) sum += a[k];
  if (sum == -12345.0f) sink[blockIdx.x] = sum;
}

__device__ uint64_t global_timer_ns() {
  uint64_t now;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
  return now;
}

__global__ void spin(uint64_t nanoseconds) {
  const uint64_t start = global_timer_ns();
  while (global_timer_ns() - start < nanoseconds) {
  }
}

// cudaMalloc'd scratch for the ceilings (kept out of pixgrad's caching
// allocator, which would hold on to the gigabytes afterwards).
struct DeviceBuffer {
  void* pointer = nullptr;
  explicit DeviceBuffer(size_t bytes) { PIXGRAD_CUDA_CHECK(cudaMalloc(&pointer, bytes)); }
  ~DeviceBuffer() {
    if (pointer) cudaFree(pointer);  // must not throw; cudaFree waits for the stream's use
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
};

// Times `launch` `repetitions` times after one warm-up; returns the fastest
// time in ms (a ceiling is the best the device can do).
template <typename Launch>
double fastest_ms(int repetitions, Launch launch) {
  launch();
  EventTimer timer(repetitions);
  for (int i = 0; i < repetitions; ++i) {
    timer.start(i);
    launch();
    timer.stop(i);
  }
  const std::vector<double> times = timer.elapsed_ms();
  return *std::min_element(times.begin(), times.end());
}

}  // namespace

// Owns the events, so that a constructor failing half-way leaks none.
struct EventTimer::Events {
  std::vector<cudaEvent_t> starts, stops;
  ~Events() {
    // Destructors must not throw: errors here are left to the next checked call.
    for (cudaEvent_t event : starts)
      if (event) cudaEventDestroy(event);
    for (cudaEvent_t event : stops)
      if (event) cudaEventDestroy(event);
  }
};

EventTimer::EventTimer(int count) : events_(std::make_unique<Events>()) {
  PIXGRAD_CHECK(count >= 1, "EventTimer: needs at least one pair of events, got ", count);
  events_->starts.assign(static_cast<size_t>(count), nullptr);
  events_->stops.assign(static_cast<size_t>(count), nullptr);
  for (size_t i = 0; i < events_->starts.size(); ++i) {
    PIXGRAD_CUDA_CHECK(cudaEventCreate(&events_->starts[i]));
    PIXGRAD_CUDA_CHECK(cudaEventCreate(&events_->stops[i]));
  }
}

EventTimer::~EventTimer() = default;

void EventTimer::start(int index) {
  PIXGRAD_CUDA_CHECK(cudaEventRecord(events_->starts.at(static_cast<size_t>(index)), pixgrad::cuda::current_stream()));
}

void EventTimer::stop(int index) {
  PIXGRAD_CUDA_CHECK(cudaEventRecord(events_->stops.at(static_cast<size_t>(index)), pixgrad::cuda::current_stream()));
}

std::vector<double> EventTimer::elapsed_ms() {
  PIXGRAD_CUDA_CHECK(cudaEventSynchronize(events_->stops.back()));
  std::vector<double> times;
  for (size_t i = 0; i < events_->starts.size(); ++i) {
    float ms = 0;
    PIXGRAD_CUDA_CHECK(cudaEventElapsedTime(&ms, events_->starts[i], events_->stops[i]));
    times.push_back(ms);
  }
  return times;
}

DeviceDescription describe_current_device() {
  cudaDeviceProp properties{};
  PIXGRAD_CUDA_CHECK(cudaGetDeviceProperties(&properties, pixgrad::cuda::current_device()));
  DeviceDescription device;
  device.name = properties.name;
  device.compute_major = properties.major;
  device.compute_minor = properties.minor;
  device.multiprocessors = properties.multiProcessorCount;
  device.l2_bytes = properties.l2CacheSize;
  device.memory_bytes = static_cast<int64_t>(properties.totalGlobalMem);
  return device;
}

double measure_copy_gbps(size_t bytes, int repetitions) {
  PIXGRAD_CHECK(bytes > 0 && repetitions >= 1, "measure_copy_gbps: bytes ", bytes, ", repetitions ", repetitions);
  const cudaStream_t stream = pixgrad::cuda::current_stream();
  const DeviceBuffer source(bytes), destination(bytes);
  PIXGRAD_CUDA_CHECK(cudaMemsetAsync(source.pointer, 0x5a, bytes, stream));
  const double ms = fastest_ms(repetitions, [&] {
    PIXGRAD_CUDA_CHECK(
        cudaMemcpyAsync(destination.pointer, source.pointer, bytes, cudaMemcpyDeviceToDevice, stream));
  });
  return 2.0 * static_cast<double>(bytes) / (ms * 1e6);
}

double measure_fma_gflops(int repetitions) {
  PIXGRAD_CHECK(repetitions >= 1, "measure_fma_gflops: repetitions ", repetitions);
  const cudaStream_t stream = pixgrad::cuda::current_stream();
  const int blocks = describe_current_device().multiprocessors * kFmaBlocksPerMultiprocessor;
  const DeviceBuffer sink(sizeof(float) * static_cast<size_t>(blocks));
  const double ms = fastest_ms(repetitions, [&] {
    fma_chains<<<blocks, kFmaThreads, 0, stream>>>(0.999999f, 1e-6f, kFmaIterations,
                                                   static_cast<float*>(sink.pointer));
    PIXGRAD_CUDA_CHECK_LAUNCH();
  });
  const double flops = 2.0 * kChains * static_cast<double>(kFmaIterations) * blocks * kFmaThreads;
  return flops / (ms * 1e6);
}

void busy_wait(double milliseconds) {
  spin<<<1, 1, 0, pixgrad::cuda::current_stream()>>>(static_cast<uint64_t>(std::max(0.0, milliseconds) * 1e6));
  PIXGRAD_CUDA_CHECK_LAUNCH();
}

}  // namespace pixgrad::bench
