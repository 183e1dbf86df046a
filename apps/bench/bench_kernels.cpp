// bench_kernels: the speed of pixgrad's kernels at the exact layer shapes of
// pix2pix (apps/bench/pix2pix_layers.h: both presets' generators and
// discriminators, batch 1 and 16 by default), on every implementation this
// build and machine have:
//
//   cudnn        cuDNN (convolutions: FP32 FMA math, deterministic; batch norm)
//   handwritten  pixgrad's CUDA kernels (implicit-GEMM convolution, batch
//                norm, elementwise, Adam)
//   cublas       im2col + cuBLAS SGEMM (convolutions)
//   cpu          pixgrad's CPU kernels (im2col + our SGEMM, OpenMP)
//
// For every convolution layer: forward, backward-data and backward-weight
// (a transposed layer through its mirror convolution, as core/ops/conv.cpp
// runs it); batch norm forward (training) and backward at every normed
// layer's output; LeakyReLU and Adam over the paper generator's parameter
// count; shapes from --shape; and the plain CPU SGEMM sweep.
//
// Method (docs/perf.md): the device's two ceilings are measured first (the
// best of several runs of a large copy and of an FMA-bound loop). Each
// measurement cycles through enough distinct operand sets that their total
// passes the last-level cache (CPU L3, GPU L2), so every call reads its
// operands from DRAM; warm-up calls come first (cuDNN picks its algorithm
// on the first call of a geometry); the median of the timed calls is
// reported. On the GPU each call sits between two CUDA events on pixgrad's
// stream, and a busy-wait queued ahead of the timed calls keeps the host's
// launch latency out of them. A row reports ms, GFLOP/s (convolutions and
// SGEMM), GB/s (the fewest bytes the call must move, over its time), the
// percentage of the roofline (the larger of FLOPs / FMA ceiling and bytes /
// copy ceiling, over the time), and on the GPU the ratio to cuDNN's time,
// with the distance to the goal for our convolutions.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "../command_line.h"
#include "cpu_ceilings.h"
#include "json_output.h"
#include "pix2pix_layers.h"
#include <pixgrad/core/cuda_info.h>
#include <pixgrad/core/error.h>
#include <pixgrad/core/file_io.h>
#include <pixgrad/core/generator.h>
#include <pixgrad/core/tensor.h>
#include <pixgrad/kernels/cpu/adam.h>
#include <pixgrad/kernels/cpu/batch_norm.h>
#include <pixgrad/kernels/cpu/conv2d.h>
#include <pixgrad/kernels/cpu/conv2d_direct.h>
#include <pixgrad/kernels/cpu/elementwise.h>
#include <pixgrad/kernels/cpu/gemm.h>
#include <pixgrad/models/networks.h>
#include <pixgrad/training/model_factory.h>

#ifdef PIXGRAD_WITH_CUDA
#include <pixgrad/kernels/cuda/batch_norm.h>
#include "bench_ceilings.h"
#include <pixgrad/kernels/cuda/conv2d.h>
#include <pixgrad/kernels/cuda/elementwise.h>
#include <pixgrad/kernels/cuda/optim.h>
#endif

namespace {

using namespace pixgrad;
namespace cpu = kernels::cpu;
using bench::ConvLayer;

// The project's goal for every convolution, "at least 0.8 of cuDNN's speed":
// our time is at most cuDNN's time / 0.8 = 1.25 x cuDNN's time.
constexpr double kCudnnSpeedGoal = 0.8;
constexpr double kMaxRatioToCudnn = 1 / kCudnnSpeedGoal;

// Operand sets of one measurement must pass these sizes together: the CPU's
// 32 MiB L3 three times over; the GPU's L2 three times over, and 150 MB at least.
constexpr double kCpuRotationBytes = 96.0 * 1024 * 1024;
constexpr double kGpuRotationMinimumBytes = 150e6;
constexpr int kMaxOperandSets = 256;

// Measured in this order, so cuDNN's time is known when the others are reported.
enum class Impl { Cudnn, Handwritten, Cublas, Cpu };
constexpr Impl kAllImpls[] = {Impl::Cudnn, Impl::Handwritten, Impl::Cublas, Impl::Cpu};

bool tf32_allowed() {
#ifdef PIXGRAD_WITH_CUDA
  return kernels::cuda::allow_tf32();
#else
  return false;
#endif
}

// The CUDA convolutions' arithmetic: one of training::precision_names().
std::string conv_precision_name() {
#ifdef PIXGRAD_WITH_CUDA
  return kernels::cuda::to_string(kernels::cuda::conv_precision());
#else
  return "fp32";
#endif
}

const char* impl_name(Impl impl) {
  switch (impl) {
    case Impl::Cudnn: return "cudnn";
    case Impl::Handwritten: return "handwritten";
    case Impl::Cublas: return "cublas";
    case Impl::Cpu: return "cpu";
  }
  return "?";
}

std::vector<std::string> split(const std::string& text, char separator = ',') {
  std::vector<std::string> items;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, separator);)
    if (!item.empty()) items.push_back(item);
  return items;
}

bool contains(const std::vector<std::string>& items, const std::string& item) {
  return std::find(items.begin(), items.end(), item) != items.end();
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

struct Options {
  bool quick = false;
  int reps = 10;
  int gpu_reps = 50;
  int threads = 0;
  std::string json_path;
  bool skip_gemm = false;
  bool gemm_only = false;
  std::string isa;
  std::string device = "auto";
  std::string impls = "cudnn,handwritten,cublas,cpu";
  std::string presets = "paper,chainer";
  std::string batches = "1,16";
  std::string ops = "conv,bn,elementwise,adam";
  std::vector<std::string> shapes;
  int64_t elements = 0;  // 0: the paper generator's parameter count
  bool count_only = false;
  bool tf32 = false;
  std::string precision;
};

// A device's two measured ceilings.
struct Ceilings {
  double gflops = 0;  // FP32 FMA
  double gbps = 0;    // copy, bytes read + written
};

// ---- what one measurement runs ----------------------------------------------

struct Operand {
  int64_t elements;
  float low = -1, high = 1;  // uniform random values (never zeros)
};

// One workload, the same for every implementation that runs it.
struct Workload {
  std::string op, layer, preset, pass, shape;
  std::optional<int64_t> batch;
  std::optional<int> per_iteration;  // how often a training iteration runs it
  double flops = 0;                  // 0: memory-bound, held to the copy ceiling alone
  double bytes = 0;                  // the fewest bytes it must move
  std::vector<Operand> operands;
};

using Call = std::function<void(const std::vector<float*>&)>;

// What a convolution call ran, asked after it ran (cuDNN chooses on the first
// call): {algorithm, math}.
using Choice = std::pair<std::string, std::string>;
using DescribeChoice = std::function<Choice()>;

struct ImplCall {
  ImplCall(Impl impl, Call call, DescribeChoice choice = {})
      : impl(impl), call(std::move(call)), choice(std::move(choice)) {}
  Impl impl;
  Call call;
  DescribeChoice choice;  // empty for ops without a choice
};

struct Record {
  Workload workload;
  Impl impl;
  std::string device;
  double ms = 0;
  std::optional<double> gflops;
  double gbps = 0;
  double percent_of_peak = 0;
  std::string bound;  // "compute" | "memory": the larger roofline term
  std::optional<double> ratio_to_cudnn;
  std::optional<bool> meets_goal;
  std::string algorithm, math;  // convolutions: what ran ("" elsewhere)
};

std::string record_key(const Workload& w) {
  return w.op + "|" + w.preset + "|" + w.layer + "|" + w.shape + "|" + w.pass;
}

// ---- the benchmark ----------------------------------------------------------

class Bench {
 public:
  Bench(const Options& options, Ceilings cpu_ceilings, std::optional<Ceilings> gpu_ceilings,
        double gpu_rotation_bytes)
      : options_(options),
        cpu_ceilings_(cpu_ceilings),
        gpu_ceilings_(gpu_ceilings),
        gpu_rotation_bytes_(gpu_rotation_bytes),
        generator_(12345) {}

  void print_header() const {
    std::printf("%-8s %-30s %5s %-15s %-11s %10s %9s %8s %6s %8s  %-12s %s\n", "preset", "layer", "batch", "pass",
                "impl", "ms", "GFLOP/s", "GB/s", "%roof", "/cuDNN", "goal", "algorithm (math)");
  }

  // Runs the workload on each implementation in `calls` (in kAllImpls order).
  void run(const Workload& workload, const std::vector<ImplCall>& calls) {
    std::vector<ImplCall> gpu_calls, cpu_calls;
    for (const ImplCall& call : calls) (call.impl == Impl::Cpu ? cpu_calls : gpu_calls).push_back(call);
    if (!gpu_calls.empty()) run_on(Device::cuda(0), workload, gpu_calls);
    if (!cpu_calls.empty()) run_on(Device::cpu(), workload, cpu_calls);
  }

  const std::vector<Record>& records() const { return records_; }

 private:
  void run_on(Device device, const Workload& workload, const std::vector<ImplCall>& calls) {
    std::vector<std::vector<Tensor>> sets = operand_sets(workload, device);
    std::vector<std::vector<float*>> pointers;
    for (const std::vector<Tensor>& set : sets) {
      pointers.emplace_back();
      for (const Tensor& t : set) pointers.back().push_back(t.data<float>());
    }
    for (const ImplCall& call : calls) {
      const double ms = device.is_cuda() ? time_gpu(pointers, call.call) : time_cpu(pointers, call.call);
      report(workload, call.impl, device, ms, call.choice ? call.choice() : Choice{});
    }
    sets.clear();
    pointers.clear();
    if (device.is_cuda()) cuda_empty_cache();  // sizes change from one layer to the next
  }

  // Enough distinct operand sets that together they pass the last-level
  // cache; set 0 is random, the others copies of it.
  std::vector<std::vector<Tensor>> operand_sets(const Workload& workload, Device device) {
    double bytes = 0;
    for (const Operand& operand : workload.operands) bytes += 4.0 * static_cast<double>(operand.elements);
    const double target = device.is_cuda() ? gpu_rotation_bytes_ : kCpuRotationBytes;
    const int count = std::clamp(static_cast<int>(std::ceil(target / std::max(bytes, 1.0))) + 1, 2, kMaxOperandSets);
    std::vector<std::vector<Tensor>> sets(static_cast<size_t>(count));
    for (const Operand& operand : workload.operands)
      sets[0].push_back(Tensor::uniform({operand.elements}, operand.low, operand.high, generator_, device));
    for (size_t i = 1; i < sets.size(); ++i)
      for (const Tensor& first : sets[0]) {
        sets[i].push_back(Tensor::empty(first.shape(), device));
        sets[i].back().copy_(first);
      }
    synchronize(device);
    return sets;
  }

  int warmup() const { return options_.quick ? 1 : 2; }

  double time_cpu(const std::vector<std::vector<float*>>& sets, const Call& call) const {
    size_t next = 0;
    for (int i = 0; i < warmup(); ++i) call(sets[next++ % sets.size()]);
    std::vector<double> times;
    for (int i = 0; i < options_.reps; ++i) {
      const auto start = std::chrono::steady_clock::now();
      call(sets[next++ % sets.size()]);
      times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
    return median(times);
  }

#ifdef PIXGRAD_WITH_CUDA
  double time_gpu(const std::vector<std::vector<float*>>& sets, const Call& call) const {
    size_t next = 0;
    for (int i = 0; i < warmup() + 1; ++i) call(sets[next++ % sets.size()]);
    synchronize(Device::cuda(0));
    bench::EventTimer timer(options_.gpu_reps);
    bench::busy_wait(std::min(50.0, 2.0 + 0.05 * options_.gpu_reps));
    for (int i = 0; i < options_.gpu_reps; ++i) {
      timer.start(i);
      call(sets[next++ % sets.size()]);
      timer.stop(i);
    }
    return median(timer.elapsed_ms());
  }
#else
  double time_gpu(const std::vector<std::vector<float*>>&, const Call&) const {
    fail("bench_kernels: built without CUDA");
  }
#endif

  void report(const Workload& w, Impl impl, Device device, double ms, const Choice& choice) {
    const Ceilings& ceilings = device.is_cuda() ? *gpu_ceilings_ : cpu_ceilings_;
    Record r;
    r.workload = w;
    r.impl = impl;
    r.device = device.str();
    r.ms = ms;
    r.algorithm = choice.first;
    r.math = choice.second;
    if (w.flops > 0) r.gflops = w.flops / (ms * 1e6);
    r.gbps = w.bytes / (ms * 1e6);
    const double compute_ms = w.flops / (ceilings.gflops * 1e6);
    const double memory_ms = w.bytes / (ceilings.gbps * 1e6);
    r.bound = compute_ms >= memory_ms ? "compute" : "memory";
    r.percent_of_peak = 100 * std::max(compute_ms, memory_ms) / ms;
    const std::string key = record_key(w);
    if (impl == Impl::Cudnn) cudnn_ms_[key] = ms;
    const auto cudnn = cudnn_ms_.find(key);
    if (impl != Impl::Cpu && cudnn != cudnn_ms_.end()) r.ratio_to_cudnn = ms / cudnn->second;
    if (w.op == "conv" && impl == Impl::Handwritten && r.ratio_to_cudnn)
      r.meets_goal = *r.ratio_to_cudnn <= kMaxRatioToCudnn;

    char ratio[16] = "-", goal[32] = "";
    if (r.ratio_to_cudnn) std::snprintf(ratio, sizeof ratio, "%.2f", *r.ratio_to_cudnn);
    if (r.meets_goal)
      std::snprintf(goal, sizeof goal, *r.meets_goal ? "met" : "needs %.2fx",
                    *r.ratio_to_cudnn / kMaxRatioToCudnn);
    char gflops[16] = "-";
    if (r.gflops) std::snprintf(gflops, sizeof gflops, "%.1f", *r.gflops);
    const std::string chosen = r.algorithm.empty() ? "" : r.algorithm + " (" + r.math + ")";
    std::printf("%-8s %-30s %5s %-15s %-11s %10.4f %9s %8.1f %6.1f %8s  %-12s %s\n", w.preset.c_str(),
                w.layer.c_str(), w.batch ? std::to_string(*w.batch).c_str() : "-", w.pass.c_str(), impl_name(impl), ms,
                gflops, r.gbps, r.percent_of_peak, ratio, goal, chosen.c_str());
    std::fflush(stdout);
    records_.push_back(r);
  }

  const Options& options_;
  Ceilings cpu_ceilings_;
  std::optional<Ceilings> gpu_ceilings_;
  double gpu_rotation_bytes_;
  Generator generator_;
  std::map<std::string, double> cudnn_ms_;
  std::vector<Record> records_;
};

// ---- convolutions -----------------------------------------------------------

enum class Pass { Forward, BackwardData, BackwardWeight };
constexpr Pass kPasses[] = {Pass::Forward, Pass::BackwardData, Pass::BackwardWeight};

const char* pass_name(Pass pass) {
  switch (pass) {
    case Pass::Forward: return "forward";
    case Pass::BackwardData: return "backward_data";
    case Pass::BackwardWeight: return "backward_weight";
  }
  return "?";
}

// Operands, in call order:
//   forward          x, w, y [, bias]
//   backward_data    dy, w, dx
//   backward_weight  x, dy, dw [, grad_bias]
// A transposed layer's bias is a separate op in core/ops/conv.cpp, not part
// of its convolution kernels, so it has none here.
Workload conv_workload(const ConvLayer& l, Pass pass) {
  Workload w;
  w.op = "conv";
  w.layer = l.preset == "custom" ? "custom " + l.label() : l.label();
  w.preset = l.preset;
  w.pass = pass_name(pass);
  w.shape = l.shape();
  w.batch = l.batch;
  if (l.preset != "custom") {
    const bench::PassCounts& c = l.per_iteration;
    w.per_iteration = pass == Pass::Forward ? c.forward : pass == Pass::BackwardData ? c.backward_data
                                                                                      : c.backward_weight;
  }
  w.flops = l.flops();
  const bool bias = l.bias && !l.transposed && pass != Pass::BackwardData;
  const int64_t x = l.input_elements(), y = l.output_elements(), wt = l.weight_elements();
  switch (pass) {
    case Pass::Forward: w.operands = {{x}, {wt}, {y}}; break;
    case Pass::BackwardData: w.operands = {{y}, {wt}, {x}}; break;
    case Pass::BackwardWeight: w.operands = {{x}, {y}, {wt}}; break;
  }
  if (bias) w.operands.push_back({l.out_channels});
  w.bytes = 4.0 * static_cast<double>(x + y + wt + (bias ? l.out_channels : 0));
  return w;
}

// One implementation's three convolution passes; a transposed layer runs
// its mirror convolution's (see ConvLayer::geometry): forward = mirror
// backward-data, backward-data = mirror forward, backward-weight = mirror
// backward-weight with the roles of x and dy swapped.
template <class Forward, class BackwardData, class BackwardWeight>
Call conv_pass_call(const ConvLayer& l, Pass pass, Forward forward, BackwardData backward_data,
                    BackwardWeight backward_weight) {
  const kernels::Conv2dGeometry g = l.geometry();
  const bool bias = l.bias && !l.transposed;
  switch (pass) {
    case Pass::Forward:
      if (l.transposed) return [=](const std::vector<float*>& p) { backward_data(g, p[0], p[1], p[2]); };
      return [=](const std::vector<float*>& p) { forward(g, p[0], p[1], bias ? p[3] : nullptr, p[2]); };
    case Pass::BackwardData:
      if (l.transposed) return [=](const std::vector<float*>& p) { forward(g, p[0], p[1], nullptr, p[2]); };
      return [=](const std::vector<float*>& p) { backward_data(g, p[0], p[1], p[2]); };
    case Pass::BackwardWeight:
      if (l.transposed) return [=](const std::vector<float*>& p) { backward_weight(g, p[1], p[0], p[2], nullptr); };
      return [=](const std::vector<float*>& p) { backward_weight(g, p[0], p[1], p[2], bias ? p[3] : nullptr); };
  }
  fail("bench_kernels: unknown convolution pass");
}

Call conv_call(Impl impl, const ConvLayer& l, Pass pass) {
  if (impl == Impl::Cpu)
    return conv_pass_call(
        l, pass,
        [](const auto& g, const float* x, const float* w, const float* b, float* y) {
          cpu::conv2d_forward(cpu::host, g, x, w, b, y);
        },
        [](const auto& g, const float* dy, const float* w, float* dx) {
          cpu::conv2d_backward_data(cpu::host, g, dy, w, dx);
        },
        [](const auto& g, const float* x, const float* dy, float* dw, float* db) {
          cpu::conv2d_backward_weight(cpu::host, g, x, dy, dw, db);
        });
#ifdef PIXGRAD_WITH_CUDA
  namespace cuda = kernels::cuda;
  const cuda::ConvImpl ci = impl == Impl::Cudnn    ? cuda::ConvImpl::Cudnn
                            : impl == Impl::Cublas ? cuda::ConvImpl::Cublas
                                                   : cuda::ConvImpl::Handwritten;
  return conv_pass_call(
      l, pass,
      [ci](const auto& g, const float* x, const float* w, const float* b, float* y) {
        cuda::conv2d_forward(cuda::gpu, ci, g, x, w, b, y);
      },
      [ci](const auto& g, const float* dy, const float* w, float* dx) {
        cuda::conv2d_backward_data(cuda::gpu, ci, g, dy, w, dx);
      },
      [ci](const auto& g, const float* x, const float* dy, float* dw, float* db) {
        cuda::conv2d_backward_weight(cuda::gpu, ci, g, x, dy, dw, db);
      });
#endif
  fail("bench_kernels: no ", impl_name(impl), " convolution in this build");
}

// What the implementation ran for a pass of the layer (a transposed layer
// runs its mirror convolution's passes: forward as backward-data and back).
DescribeChoice conv_choice(Impl impl, const ConvLayer& l, Pass pass) {
  if (impl == Impl::Cpu) {
    // The CPU runs a transposed layer's passes as its mirror convolution's.
    kernels::ConvPass mirror = kernels::ConvPass::BackwardWeight;
    if (pass != Pass::BackwardWeight)
      mirror = (pass == Pass::Forward) != l.transposed ? kernels::ConvPass::Forward
                                                      : kernels::ConvPass::BackwardData;
    const kernels::Conv2dGeometry g = l.geometry();
    return [g, mirror] {
      const kernels::cpu::ConvChoice c = kernels::cpu::conv_choice(g, mirror);
      return Choice{c.algorithm, c.math};
    };
  }
#ifdef PIXGRAD_WITH_CUDA
  namespace cuda = kernels::cuda;
  const cuda::ConvImpl ci = impl == Impl::Cudnn    ? cuda::ConvImpl::Cudnn
                            : impl == Impl::Cublas ? cuda::ConvImpl::Cublas
                                                   : cuda::ConvImpl::Handwritten;
  cuda::ConvPass mirror = cuda::ConvPass::BackwardWeight;
  if (pass == Pass::Forward) mirror = l.transposed ? cuda::ConvPass::BackwardData : cuda::ConvPass::Forward;
  if (pass == Pass::BackwardData) mirror = l.transposed ? cuda::ConvPass::Forward : cuda::ConvPass::BackwardData;
  const kernels::Conv2dGeometry g = l.geometry();
  return [ci, mirror, g] {
    const cuda::ConvChoice choice = cuda::conv_choice(ci, mirror, g);
    return Choice{choice.algorithm, choice.math};
  };
#else
  (void)pass;  // only CUDA implementations run a pass as another
  return {};
#endif
}

void bench_conv(Bench& bench, const std::vector<Impl>& impls, const ConvLayer& layer) {
  for (Pass pass : kPasses) {
    std::vector<ImplCall> calls;
    for (Impl impl : impls) calls.push_back({impl, conv_call(impl, layer, pass), conv_choice(impl, layer, pass)});
    bench.run(conv_workload(layer, pass), calls);
  }
}

// ---- batch norm -------------------------------------------------------------

struct NormShape {
  std::string preset, layer;
  kernels::BatchNormShape shape;
  std::optional<int> forward_per_iteration, backward_per_iteration;
};

constexpr double kBatchNormEps = 1e-5;

// Batch norm with an epilogue (kernels/norm_epilogue.h) fused: "batch_norm"
// without one, and, without a count per iteration, "batch_norm+leaky_relu"
// as the U-Net's encoder runs it (the backward also reads y). cuDNN has no
// fused form.
void bench_batch_norm(Bench& bench, const std::vector<Impl>& impls, const NormShape& n,
                      const kernels::NormEpilogue& epilogue = {}) {
  const kernels::BatchNormShape s = n.shape;
  const int64_t elements = s.batch * s.channels * s.spatial, c = s.channels;
  const std::string shape =
      std::to_string(s.batch) + "x" + std::to_string(s.channels) + "x" + std::to_string(s.spatial);
  const bool fused = !epilogue.identity();
  const std::string op = fused ? "batch_norm+leaky_relu" : "batch_norm";
  const std::optional<int> forward_count = fused ? std::nullopt : n.forward_per_iteration;
  const std::optional<int> backward_count = fused ? std::nullopt : n.backward_per_iteration;
  const std::string layer = fused ? n.layer + " +lrelu" : n.layer;
  Workload forward{op, layer, n.preset, "forward", shape, s.batch, forward_count, 0, 0, {}};
  // x, weight, bias, y, mean, invstd, unbiased_var
  forward.operands = {{elements}, {c, 0.5f, 1.5f}, {c}, {elements}, {c}, {c}, {c}};
  forward.bytes = 4.0 * static_cast<double>(2 * elements + 5 * c);
  Workload backward{op, layer, n.preset, "backward", shape, s.batch, backward_count, 0, 0, {}};
  // x, dy, weight, mean, invstd, dx, dweight, dbias, y
  backward.operands = {{elements}, {elements}, {c, 0.5f, 1.5f}, {c}, {c, 0.5f, 2.0f}, {elements}, {c}, {c}, {elements}};
  backward.bytes = 4.0 * static_cast<double>((fused ? 4 : 3) * elements + 5 * c);

  std::vector<ImplCall> forward_calls, backward_calls;
  for (Impl impl : impls) {
    if (impl == Impl::Cublas || (fused && impl == Impl::Cudnn)) continue;
    if (impl == Impl::Cpu) {
      forward_calls.push_back({impl, [s, epilogue](const std::vector<float*>& p) {
                                 cpu::batch_norm_forward_training(cpu::host, s, p[0], p[1], p[2], kBatchNormEps, p[3],
                                                                  p[4], p[5], p[6], epilogue);
                               }});
      backward_calls.push_back({impl, [s, epilogue](const std::vector<float*>& p) {
                                  cpu::batch_norm_backward(cpu::host, s, p[0], p[1], p[2], p[3], p[4], true, p[5], p[6],
                                                           p[7], p[8], epilogue);
                                }});
      continue;
    }
#ifdef PIXGRAD_WITH_CUDA
    namespace cuda = kernels::cuda;
    const cuda::BatchNormImpl bi = impl == Impl::Cudnn ? cuda::BatchNormImpl::Cudnn : cuda::BatchNormImpl::Handwritten;
    forward_calls.push_back({impl, [s, bi, epilogue](const std::vector<float*>& p) {
                               cuda::set_batch_norm_impl(bi);
                               cuda::batch_norm_forward_training(cuda::gpu, s, p[0], p[1], p[2], kBatchNormEps, p[3],
                                                                 p[4], p[5], p[6], epilogue);
                             }});
    backward_calls.push_back({impl, [s, bi, epilogue](const std::vector<float*>& p) {
                                cuda::set_batch_norm_impl(bi);
                                cuda::batch_norm_backward(cuda::gpu, s, p[0], p[1], p[2], p[3], p[4], true, p[5], p[6],
                                                          p[7], p[8], epilogue);
                              }});
#endif
  }
  bench.run(forward, forward_calls);
  bench.run(backward, backward_calls);
}

// The U-Net encoder's epilogue: leaky ReLU 0.2 after the norm.
kernels::NormEpilogue leaky_relu_epilogue() {
  kernels::NormEpilogue epilogue;
  epilogue.activation = kernels::NormActivation::LeakyRelu;
  epilogue.slope = 0.2;
  return epilogue;
}

// The normed layers' outputs, one entry per distinct shape (counts summed).
std::vector<NormShape> norm_shapes(const std::vector<ConvLayer>& layers) {
  std::vector<NormShape> shapes;
  for (const ConvLayer& l : layers) {
    if (!l.norm) continue;
    const kernels::BatchNormShape s{l.batch, l.out_channels, l.out_height() * l.out_width()};
    auto same = std::find_if(shapes.begin(), shapes.end(), [&](const NormShape& n) {
      return n.shape.channels == s.channels && n.shape.spatial == s.spatial;
    });
    if (same == shapes.end()) {
      shapes.push_back({l.preset, "bn " + std::to_string(s.channels) + "@" + std::to_string(l.out_height()) +
                                      (l.out_height() == l.out_width() ? "" : "x" + std::to_string(l.out_width())),
                        s, 0, 0});
      same = shapes.end() - 1;
    }
    *same->forward_per_iteration += l.bn_forward();
    *same->backward_per_iteration += l.bn_backward();
  }
  return shapes;
}

// ---- elementwise and Adam ---------------------------------------------------

void bench_elementwise(Bench& bench, const std::vector<Impl>& impls, int64_t n, const std::string& preset) {
  Workload w{"elementwise", preset == "paper" ? "leaky_relu (G params)" : "leaky_relu",
             preset, "forward", std::to_string(n), {}, {}, 0, 8.0 * static_cast<double>(n), {{n}, {n}}};
  std::vector<ImplCall> calls;
  for (Impl impl : impls) {
    if (impl == Impl::Cpu)
      calls.push_back({impl, [n](const std::vector<float*>& p) {
                         cpu::unary_forward(cpu::host, kernels::UnaryOp::LeakyRelu, p[0], p[1], n, 0.2);
                       }});
#ifdef PIXGRAD_WITH_CUDA
    if (impl == Impl::Handwritten)
      calls.push_back({impl, [n](const std::vector<float*>& p) {
                         kernels::cuda::unary_forward(kernels::cuda::gpu, kernels::UnaryOp::LeakyRelu, p[0], p[1], n, 0.2);
                       }});
#endif
  }
  bench.run(w, calls);
}

void bench_adam(Bench& bench, const std::vector<Impl>& impls, int64_t n, const std::string& preset) {
  // Reads p, g, m, v; writes p, m, v. v is kept positive.
  Workload w{"adam", preset == "paper" ? "adam (G params)" : "adam", preset, "step", std::to_string(n), {}, {}, 0,
             28.0 * static_cast<double>(n), {{n}, {n}, {n}, {n, 0.0f, 1.0f}}};
  const kernels::AdamStep step{2e-4, 0.5, 0.999, 1e-8, 0.0, 10, kernels::EpsilonPlacement::PyTorch};
  std::vector<ImplCall> calls;
  for (Impl impl : impls) {
    if (impl == Impl::Cpu)
      calls.push_back({impl, [n, step](const std::vector<float*>& p) {
                         cpu::adam_update(cpu::host, step, p[0], p[1], p[2], p[3], n, static_cast<float*>(nullptr));
                       }});
#ifdef PIXGRAD_WITH_CUDA
    if (impl == Impl::Handwritten)
      calls.push_back({impl, [n, step](const std::vector<float*>& p) {
                         kernels::cuda::adam_update(kernels::cuda::gpu, step, p[0], p[1], p[2], p[3], n);
                       }});
#endif
  }
  bench.run(w, calls);
}

// ---- plain SGEMM (CPU) --------------------------------------------------------

void bench_gemm(Bench& bench, cpu::SgemmIsa isa) {
  struct Shape {
    int64_t M, N, K;
    bool ta, tb;
  };
  const Shape shapes[] = {
      {256, 256, 256, false, false},    {512, 512, 512, false, false},   {1024, 1024, 1024, false, false},
      {2048, 2048, 2048, false, false}, {1024, 1024, 1024, true, false}, {1024, 1024, 1024, false, true},
      {1024, 1024, 1024, true, true},   {512, 256, 4096, false, false},  {64, 16384, 48, false, false},
      {512, 4, 8192, false, false},     {4096, 256, 512, true, false},   {512, 4096, 256, false, true},
  };
  for (const Shape& s : shapes) {
    const std::string trans = std::string(s.ta ? "T" : "N") + (s.tb ? "T" : "N");
    const std::string shape =
        "M" + std::to_string(s.M) + " N" + std::to_string(s.N) + " K" + std::to_string(s.K) + " " + trans;
    Workload w{"sgemm", "sgemm " + shape, "", cpu::sgemm_isa_name(isa), shape, {}, {}, 2.0 * s.M * s.N * s.K,
               4.0 * static_cast<double>(s.M * s.K + s.K * s.N + s.M * s.N), {{s.M * s.K}, {s.K * s.N}, {s.M * s.N}}};
    bench.run(w, {{Impl::Cpu, [s, isa](const std::vector<float*>& p) {
                     cpu::sgemm(isa, s.ta, s.tb, s.M, s.N, s.K, 1.0f, p[0], s.ta ? s.M : s.K, p[1], s.tb ? s.K : s.N,
                                0.0f, p[2], s.N);
                   }}});
    // --precision bf16 where the CPU has AVX-512 BF16: the same product with
    // bf16 operands (FP32 for the shapes gemm_bf16_rounds declines).
    if (cpu::conv_precision_in_effect() != kernels::ConvPrecision::Bf16) continue;
    w.op = "gemm_bf16";
    w.layer = "gemm_bf16 " + shape;
    w.pass = cpu::gemm_bf16_rounds(s.ta, s.M, s.N) ? "avx512_bf16" : "fp32 (declined)";
    bench.run(w, {{Impl::Cpu, [s](const std::vector<float*>& p) {
                     cpu::gemm_bf16(s.ta, s.tb, s.M, s.N, s.K, 1.0f, p[0], s.ta ? s.M : s.K, p[1],
                                    s.tb ? s.K : s.N, 0.0f, p[2], s.N);
                   }}});
  }
}

// ---- command-line shapes ----------------------------------------------------

// `count` comma-separated integers, each positive except those at `may_be_zero`.
std::vector<int64_t> parse_numbers(const std::string& text, size_t count, const std::string& spec,
                                   std::optional<size_t> may_be_zero = std::nullopt) {
  std::vector<int64_t> values;
  for (const std::string& item : split(text)) {
    size_t used = 0;
    long long value = -1;
    try {
      value = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    const bool zero_ok = may_be_zero && *may_be_zero == values.size();
    PIXGRAD_CHECK(used == item.size() && (value > 0 || (value == 0 && zero_ok)), "--shape ", spec, ": '", item,
                  "' is not a ", zero_ok ? "non-negative" : "positive", " integer");
    values.push_back(value);
  }
  PIXGRAD_CHECK(values.size() == count, "--shape ", spec, ": expected ", count, " comma-separated numbers, got ",
                values.size());
  return values;
}

// conv:N,Cin,H,W,Cout,k,s,p | deconv:N,Cin,H,W,Cout,k,s,p | bn:N,C,H,W
std::variant<ConvLayer, NormShape> parse_shape(const std::string& spec) {
  const size_t colon = spec.find(':');
  PIXGRAD_CHECK(colon != std::string::npos, "--shape ", spec,
                ": expected conv:N,Cin,H,W,Cout,k,s,p, deconv:N,Cin,H,W,Cout,k,s,p or bn:N,C,H,W");
  const std::string kind = spec.substr(0, colon), numbers = spec.substr(colon + 1);
  if (kind == "bn") {
    const std::vector<int64_t> v = parse_numbers(numbers, 4, spec);
    return NormShape{"custom", "custom bn " + std::to_string(v[1]) + "@" + std::to_string(v[2]) + "x" +
                                   std::to_string(v[3]),
                     {v[0], v[1], v[2] * v[3]}, {}, {}};
  }
  PIXGRAD_CHECK(kind == "conv" || kind == "deconv", "--shape ", spec, ": unknown kind '", kind,
                "' (expected conv, deconv or bn)");
  const std::vector<int64_t> v = parse_numbers(numbers, 8, spec, 7);  // padding may be 0
  ConvLayer l;
  l.preset = "custom";
  l.name = kind;
  l.transposed = kind == "deconv";
  l.batch = v[0];
  l.in_channels = v[1];
  l.height = v[2];
  l.width = v[3];
  l.out_channels = v[4];
  l.kernel = v[5];
  l.stride = v[6];
  l.padding = v[7];
  PIXGRAD_CHECK(l.out_height() > 0 && l.out_width() > 0, "--shape ", spec, ": the output would be empty");
  return l;
}

// ---- per-iteration totals ---------------------------------------------------

struct IterationTotal {
  std::string preset, impl;
  int64_t batch;
  double conv_ms = 0, batch_norm_ms = 0, conv_gflop = 0;
  int conv_rows = 0, batch_norm_rows = 0;
};

// Sums each preset layer's measured time times how often an iteration runs
// it: the iteration's convolution (and batch-norm) time at these speeds.
std::vector<IterationTotal> iteration_totals(const std::vector<Record>& records) {
  std::vector<IterationTotal> totals;
  for (const Record& r : records) {
    const Workload& w = r.workload;
    if (!w.per_iteration || !w.batch || (w.op != "conv" && w.op != "batch_norm")) continue;
    auto total = std::find_if(totals.begin(), totals.end(), [&](const IterationTotal& t) {
      return t.preset == w.preset && t.batch == *w.batch && t.impl == impl_name(r.impl);
    });
    if (total == totals.end()) {
      totals.push_back({w.preset, impl_name(r.impl), *w.batch});
      total = totals.end() - 1;
    }
    if (w.op == "conv") {
      total->conv_ms += *w.per_iteration * r.ms;
      total->conv_gflop += *w.per_iteration * w.flops / 1e9;
      ++total->conv_rows;
    } else {
      total->batch_norm_ms += *w.per_iteration * r.ms;
      ++total->batch_norm_rows;
    }
  }
  return totals;
}

// ---- --count-only -------------------------------------------------------------

// Datasheet leads for an H100 SXM (non-tensor-core FP32, HBM3), used only to
// put a floor under the per-iteration counts before a GPU has measured them.
constexpr double kH100Fp32Tflops = 67.0;
constexpr double kH100TeraBytesPerSecond = 3.35;

int64_t parameter_count(const nn::Module& module) {
  int64_t count = 0;
  for (const Tensor& p : module.parameters()) count += p.numel();
  return count;
}

int count_only(const std::vector<std::string>& presets, const std::vector<int64_t>& batches) {
  int status = 0;
  std::printf("per training iteration at 256x256 (conv passes as apps/bench/pix2pix_layers.h counts them)\n");
  std::printf("%-8s %5s %12s %12s %10s %10s %10s | %14s %14s\n", "preset", "batch", "conv GFLOP", "conv MB",
              "BN MB", "Adam MB", "params M", "H100 ms FLOPs", "H100 ms bytes");
  for (const std::string& preset : presets) {
    for (const int64_t batch : batches) {
      const bench::IterationCost cost = bench::iteration_cost(bench::preset_layers(preset, batch));
      const double bytes = cost.conv_bytes + cost.bn_bytes + cost.adam_bytes;
      std::printf("%-8s %5lld %12.2f %12.1f %10.1f %10.1f %10.3f | %14.3f %14.3f\n", preset.c_str(),
                  static_cast<long long>(batch), cost.conv_flops / 1e9, cost.conv_bytes / 1e6, cost.bn_bytes / 1e6,
                  cost.adam_bytes / 1e6, (cost.g_parameters + cost.d_parameters) / 1e6,
                  cost.conv_flops / (kH100Fp32Tflops * 1e9), bytes / (kH100TeraBytesPerSecond * 1e9));
    }
    const bench::IterationCost one = bench::iteration_cost(bench::preset_layers(preset, 1));
    for (int network = 0; network < 2; ++network)
      std::printf("%-8s %s conv GFLOP at batch 1: forward %.2f, backward-data %.2f, backward-weight %.2f\n",
                  preset.c_str(), network == 0 ? "G" : "D", one.conv_flops_by[network][0] / 1e9,
                  one.conv_flops_by[network][1] / 1e9, one.conv_flops_by[network][2] / 1e9);
    // The walk must find every parameter of the models (only convolutions and
    // their norms have any): compare parameter counts.
    const models::Preset p = models::parse_preset(preset);
    const int64_t in = bench::preset_input_channels(preset);
    const int64_t g = parameter_count(*models::make_generator(p, models::UnetOptions::for_preset(p, in, 3)));
    const int64_t d = parameter_count(*models::make_discriminator(p, models::PatchGanOptions::for_preset(p, in, 3)));
    const bool same = g == one.g_parameters && d == one.d_parameters;
    std::printf("%-8s parameters: G %lld, D %lld (layer table: %lld, %lld)%s\n", preset.c_str(),
                static_cast<long long>(g), static_cast<long long>(d), static_cast<long long>(one.g_parameters),
                static_cast<long long>(one.d_parameters), same ? "" : "  MISMATCH: the layer walk missed parameters");
    if (!same) status = 1;
  }
  std::printf("floors: FLOPs / %.0f TFLOP/s (H100 SXM FP32, no tensor cores), bytes (conv + BN + Adam) / %.2f TB/s\n",
              kH100Fp32Tflops, kH100TeraBytesPerSecond);
  return status;
}

// ---- machine description ------------------------------------------------------

std::string cpu_model() {
  std::ifstream info("/proc/cpuinfo");
  std::string line;
  while (std::getline(info, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return text;
}

nlohmann::json optional_json(const std::optional<double>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

nlohmann::json to_json(const Record& r) {
  const Workload& w = r.workload;
  return {{"op", w.op},
          {"layer", w.layer},
          {"preset", w.preset.empty() ? nlohmann::json(nullptr) : nlohmann::json(w.preset)},
          {"batch", w.batch ? nlohmann::json(*w.batch) : nlohmann::json(nullptr)},
          {"pass", w.pass},
          {"impl", impl_name(r.impl)},
          {"device", r.device},
          {"shape", w.shape},
          {"ms", r.ms},
          {"gflops", optional_json(r.gflops)},
          {"gbps", r.gbps},
          {"percent_of_peak", r.percent_of_peak},
          {"bound", r.bound},
          {"ratio_to_cudnn", optional_json(r.ratio_to_cudnn)},
          {"meets_goal", r.meets_goal ? nlohmann::json(*r.meets_goal) : nlohmann::json(nullptr)},
          {"algorithm", r.algorithm.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.algorithm)},
          {"math", r.math.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.math)},
          {"per_iteration", w.per_iteration ? nlohmann::json(*w.per_iteration) : nlohmann::json(nullptr)}};
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  CLI::App app{"bench_kernels: pixgrad's kernels (CPU, CUDA, cuDNN, cuBLAS) at the pix2pix layer shapes"};
  apps::last_value_wins(app);
  app.add_flag("--quick", options.quick,
               "Short run: batch 1, few repetitions, with a GPU only the GPU implementations "
               "(under 30 s on a 2-core CPU)");
  app.add_option("--reps", options.reps, "Timed CPU calls per measurement (median reported; --quick: 3)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--gpu-reps", options.gpu_reps, "Timed GPU calls per measurement (--quick: 15)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--threads", options.threads, "OpenMP threads (default: OMP_NUM_THREADS or all)")
      ->check(CLI::PositiveNumber);
  app.add_option("--json", options.json_path, "Write the machine, its ceilings and one record per measurement");
  app.add_option("--device", options.device, "auto (GPU and CPU when a GPU is usable), cpu, cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  app.add_option("--impls", options.impls, "Comma-separated implementations to run")->capture_default_str();
  app.add_option("--presets", options.presets, "Comma-separated presets whose layers to run, or none")
      ->capture_default_str();
  app.add_option("--batch-sizes", options.batches, "Comma-separated batch sizes of the preset layers (--quick: 1)")
      ->capture_default_str();
  app.add_option("--ops", options.ops, "Comma-separated: conv, bn, elementwise, adam")->capture_default_str();
  app.add_option("--shape", options.shapes,
                 "Extra shape (repeatable): conv:N,Cin,H,W,Cout,k,s,p | deconv:N,Cin,H,W,Cout,k,s,p | bn:N,C,H,W");
  app.add_option("--elements", options.elements,
                 "Elements of the elementwise and Adam runs (default: the paper generator's parameter count)")
      ->check(CLI::PositiveNumber);
  app.add_flag("--count-only", options.count_only,
               "Print the FLOPs and bytes of a training iteration per preset and batch, time nothing");
  apps::add_precision_options(app, options.precision, options.tf32,
                              ". With fp32 cuDNN is restricted to FMA math; each record says which math ran");
  app.add_flag("--skip-gemm", options.skip_gemm, "Leave out the plain CPU SGEMM sweep");
  app.add_flag("--gemm-only", options.gemm_only, "Run only the plain CPU SGEMM sweep");
  app.add_option("--isa", options.isa, "Instruction set of the SGEMM sweep (default: the best this CPU supports)")
      ->check(CLI::IsMember({"avx512", "avx2", "scalar"}));
  if (const std::optional<int> status = apps::parse_command_line(app, argc, argv, "bench_kernels")) return *status;

  try {
    if (options.quick) {
      if (app.count("--reps") == 0) options.reps = 3;
      if (app.count("--gpu-reps") == 0) options.gpu_reps = 15;
      if (app.count("--batch-sizes") == 0) options.batches = "1";
    }
    if (options.threads > 0) omp_set_num_threads(options.threads);

    const std::vector<std::string> presets = options.presets == "none" ? std::vector<std::string>{}
                                                                        : split(options.presets);
    for (const std::string& preset : presets)
      PIXGRAD_CHECK(preset == "paper" || preset == "chainer", "--presets: unknown preset '", preset,
                    "' (expected paper, chainer or none)");
    std::vector<int64_t> batches;
    for (const std::string& item : split(options.batches)) {
      size_t used = 0;
      long long batch = 0;
      try {
        batch = std::stoll(item, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      PIXGRAD_CHECK(used == item.size() && batch > 0, "--batch-sizes: '", item, "' is not a positive integer");
      batches.push_back(batch);
    }
    std::sort(batches.begin(), batches.end());
    const std::vector<std::string> ops = split(options.ops);
    for (const std::string& op : ops)
      PIXGRAD_CHECK(op == "conv" || op == "bn" || op == "elementwise" || op == "adam", "--ops: unknown op '", op,
                    "' (expected conv, bn, elementwise, adam)");

    std::vector<std::variant<ConvLayer, NormShape>> shapes;
    for (const std::string& spec : options.shapes) shapes.push_back(parse_shape(spec));

    // --precision (or --tf32) sets the arithmetic; without them the environment decides, read now so that
    // a bad value fails at once (with --count-only too).
    const std::string selected_precision = training::select_precision(options.precision, options.tf32);
    if (options.count_only) return count_only(presets, batches);

    cpu::SgemmIsa gemm_isa = cpu::sgemm_best_isa();
    for (cpu::SgemmIsa isa : {cpu::SgemmIsa::Avx512, cpu::SgemmIsa::Avx2, cpu::SgemmIsa::Scalar})
      if (options.isa == cpu::sgemm_isa_name(isa)) gemm_isa = isa;
    PIXGRAD_CHECK(cpu::sgemm_isa_supported(gemm_isa), "this CPU does not support --isa ", options.isa);

    // Which implementations run: the GPU ones only with a usable GPU.
    std::string no_gpu_reason;
    const bool gpu = options.device != "cpu" && cuda_device_count(&no_gpu_reason) > 0;
    if (options.device == "cuda") PIXGRAD_CHECK(gpu, "--device cuda: no usable GPU (", no_gpu_reason, ")");
    std::vector<std::string> wanted = split(options.impls);
    // --quick on a GPU machine times the GPU implementations only (unless --impls names the CPU).
    if (options.quick && gpu && app.count("--impls") == 0)
      wanted.erase(std::remove(wanted.begin(), wanted.end(), "cpu"), wanted.end());
    std::vector<Impl> impls;
    for (const std::string& name : wanted)
      PIXGRAD_CHECK(name == "cudnn" || name == "handwritten" || name == "cublas" || name == "cpu",
                    "--impls: unknown implementation '", name, "' (expected cudnn, handwritten, cublas, cpu)");
    for (Impl impl : kAllImpls) {
      if (!contains(wanted, impl_name(impl))) continue;
      if (impl == Impl::Cpu ? options.device == "cuda" : !gpu) continue;
      impls.push_back(impl);
    }
    if (options.gemm_only) impls = {Impl::Cpu};
    const bool run_cpu = std::find(impls.begin(), impls.end(), Impl::Cpu) != impls.end();

    std::printf("cpu: %s, %d threads, convolutions on %s, sgemm sweep on %s\n", cpu_model().c_str(),
                omp_get_max_threads(), cpu::sgemm_isa_name(cpu::sgemm_best_isa()), cpu::sgemm_isa_name(gemm_isa));
    if (run_cpu && cpu::conv_precision_in_effect() == kernels::ConvPrecision::Bf16)
      std::printf("cpu bf16: %%roof holds the bf16 products to the FP32 FMA ceiling; their dot products do two "
                  "multiply-adds per lane, so it may pass 100\n");
    else if (run_cpu && selected_precision == "bf16")
      std::printf("note: cpu %s\n",
                  training::describe_convolutions(Device::cpu(), selected_precision, "").c_str());
    if (!gpu && options.device != "cpu")
      std::printf("no usable GPU (%s): benchmarking the CPU kernels only\n", no_gpu_reason.c_str());
    PIXGRAD_CHECK(!impls.empty(), "--impls ", options.impls, ": none of these can run here");

    nlohmann::json machine = {{"date", utc_now()},
                              {"cpu", cpu_model()},
                              {"threads", omp_get_max_threads()},
                              {"gpu", nullptr}};
    nlohmann::json ceilings_json = {{"cpu", nullptr}, {"cuda", nullptr}};
    Ceilings cpu_ceilings;
    if (run_cpu) {
      cpu_ceilings = {bench::cpu_fma_gflops(), bench::cpu_copy_gbps()};
      std::printf("cpu ceilings: FMA %.0f GFLOP/s, copy %.1f GB/s (read + write)\n", cpu_ceilings.gflops,
                  cpu_ceilings.gbps);
      ceilings_json["cpu"] = {{"gflops", cpu_ceilings.gflops}, {"gbps", cpu_ceilings.gbps}};
    }
    std::optional<Ceilings> gpu_ceilings;
    double gpu_rotation_bytes = kGpuRotationMinimumBytes;
#ifdef PIXGRAD_WITH_CUDA
    if (gpu) {
      cuda_activate(0);
      const bench::DeviceDescription d = bench::describe_current_device();
      gpu_ceilings =
          Ceilings{bench::measure_fma_gflops(10), bench::measure_copy_gbps(size_t{1} << 30, 10)};
      gpu_rotation_bytes = std::max(kGpuRotationMinimumBytes, 3.0 * static_cast<double>(d.l2_bytes));
      std::printf("gpu: %s (sm_%d%d, %d SMs, L2 %.0f MB, %.1f GB); ceilings: FMA %.0f GFLOP/s, copy %.0f GB/s\n",
                  d.name.c_str(), d.compute_major, d.compute_minor, d.multiprocessors, d.l2_bytes / 1e6,
                  d.memory_bytes / 1e9, gpu_ceilings->gflops, gpu_ceilings->gbps);
      machine["gpu"] = {{"name", d.name},
                        {"compute_capability", std::to_string(d.compute_major) + "." + std::to_string(d.compute_minor)},
                        {"multiprocessors", d.multiprocessors},
                        {"l2_bytes", d.l2_bytes},
                        {"memory_bytes", d.memory_bytes}};
      ceilings_json["cuda"] = {{"gflops", gpu_ceilings->gflops}, {"gbps", gpu_ceilings->gbps}};
    }
#endif
    if (gpu_ceilings)
      std::printf("reps: cpu %d, gpu %d (median); goal: handwritten convolutions within %.1fx of cuDNN's speed, "
                  "i.e. time <= %.2f x cuDNN's\n\n",
                  options.reps, options.gpu_reps, kCudnnSpeedGoal, kMaxRatioToCudnn);
    else
      std::printf("reps: cpu %d (median)\n\n", options.reps);

    Bench bench(options, cpu_ceilings, gpu_ceilings, gpu_rotation_bytes);
    // The JSON document, rewritten after every layer (`complete` false) so
    // that a run stopped early keeps its measurements, and once at the end.
    const auto write_results = [&](bool complete) {
      if (options.json_path.empty()) return;
      nlohmann::json records = nlohmann::json::array();
      for (const Record& r : bench.records()) records.push_back(to_json(r));
      nlohmann::json totals_json = nlohmann::json::array();
      for (const IterationTotal& t : iteration_totals(bench.records()))
        totals_json.push_back({{"preset", t.preset},
                               {"batch", t.batch},
                               {"impl", t.impl},
                               {"conv_ms", t.conv_ms},
                               {"batch_norm_ms", t.batch_norm_ms},
                               {"conv_gflop", t.conv_gflop}});
      apps::write_json_file(options.json_path,
                            {{"tool", "bench_kernels"},
                             {"complete", complete},
                             {"machine", machine},
                             {"ceilings", ceilings_json},
                             {"tf32_allowed", tf32_allowed()},
                             {"precision", conv_precision_name()},
                             {"goal", {{"conv_max_ratio_to_cudnn", kMaxRatioToCudnn},
                                       {"meaning", "handwritten convolution time <= cuDNN time / 0.8"}}},
                             {"records", records},
                             {"iteration_totals", totals_json}});
    };
    bench.print_header();
    if (!options.gemm_only) {
      for (const int64_t batch : batches)
        for (const std::string& preset : presets) {
          const std::vector<ConvLayer> layers = bench::preset_layers(preset, batch);
          if (contains(ops, "conv"))
            for (const ConvLayer& layer : layers) {
              bench_conv(bench, impls, layer);
              write_results(false);
            }
          if (contains(ops, "bn"))
            for (const NormShape& shape : norm_shapes(layers)) {
              bench_batch_norm(bench, impls, shape);
              bench_batch_norm(bench, impls, shape, leaky_relu_epilogue());
            }
          write_results(false);
        }
      for (const auto& shape : shapes) {
        if (const ConvLayer* layer = std::get_if<ConvLayer>(&shape))
          bench_conv(bench, impls, *layer);
        else
          bench_batch_norm(bench, impls, std::get<NormShape>(shape));
      }
      const int64_t paper_g_parameters = bench::iteration_cost(bench::preset_layers("paper", 1)).g_parameters;
      const int64_t elements = options.elements > 0 ? options.elements : paper_g_parameters;
      const std::string over = options.elements > 0 ? "custom" : "paper";
      if (contains(ops, "elementwise")) bench_elementwise(bench, impls, elements, over);
      if (contains(ops, "adam")) bench_adam(bench, impls, elements, over);
    }
    if (!options.skip_gemm && run_cpu) bench_gemm(bench, gemm_isa);

    const std::vector<IterationTotal> totals = iteration_totals(bench.records());
    if (!totals.empty()) {
      std::printf("\nper training iteration at these speeds (each preset layer's time x its passes per iteration)\n");
      std::printf("%-8s %5s %-11s %10s %10s %11s %12s\n", "preset", "batch", "impl", "conv ms", "BN ms", "conv GFLOP",
                  "conv GFLOP/s");
      for (const IterationTotal& t : totals)
        std::printf("%-8s %5lld %-11s %10.2f %10.2f %11.2f %12.1f\n", t.preset.c_str(),
                    static_cast<long long>(t.batch), t.impl.c_str(), t.conv_ms, t.batch_norm_ms, t.conv_gflop,
                    t.conv_ms > 0 ? t.conv_gflop / (t.conv_ms / 1e3) : 0.0);
    }

    write_results(true);
    return 0;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "bench_kernels: %s\n", io::printable(error.what()).c_str());
    return 1;
  }
}
