// What the benchmarks (apps/bench_kernels, apps/bench_pix2pix) need from the
// GPU beyond the kernels they time: a description of the device, its two
// measured ceilings, event timing on pixgrad's stream, and a busy-wait that
// lets the host queue launches ahead of the GPU.
//
// The ceilings are measured, not taken from a datasheet (docs/perf.md):
//   copy  a large device-to-device cudaMemcpyAsync, counting the bytes read
//         plus the bytes written (what every memory-bound kernel is held to);
//   FMA   a kernel of independent FP32 fused multiply-adds in registers,
//         2 FLOP per FMA, on every multiprocessor (the non-tensor-core FP32
//         rate our convolutions and cuDNN's FMA-math path are held to).
//
// Plain C++ (no CUDA types), so g++-compiled programs can include it; the
// definitions are in bench_ceilings.cu, built only with the CUDA backend.
// Everything runs on the current device's stream (cuda::current_stream()).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace pixgrad::bench {

struct DeviceDescription {
  std::string name;
  int compute_major = 0, compute_minor = 0;
  int multiprocessors = 0;
  int64_t l2_bytes = 0;
  int64_t memory_bytes = 0;
};
DeviceDescription describe_current_device();

// The fastest of `repetitions` timed copies of `bytes` (after one warm-up),
// in GB/s (1e9 bytes) counting 2 * bytes per copy. Allocates 2 * bytes with
// cudaMalloc for the duration of the call.
double measure_copy_gbps(size_t bytes, int repetitions);
// The fastest of `repetitions` timed launches (after one warm-up), in GFLOP/s.
double measure_fma_gflops(int repetitions);

// Spins the current stream for about `milliseconds` (by the GPU's global
// timer). Queued before a run of timed launches, it lets the host enqueue
// them all while the GPU is busy, so that each event pair measures the
// launches' execution and not the host's launch latency.
void busy_wait(double milliseconds);

// `count` pairs of CUDA events recorded on the current stream; elapsed_ms()
// waits for the last one and returns every pair's time in milliseconds.
class EventTimer {
 public:
  explicit EventTimer(int count);
  ~EventTimer();
  EventTimer(const EventTimer&) = delete;
  EventTimer& operator=(const EventTimer&) = delete;

  void start(int index);
  void stop(int index);
  std::vector<double> elapsed_ms();

 private:
  struct Events;
  std::unique_ptr<Events> events_;
};

}  // namespace pixgrad::bench
