// bench_kernels: CPU throughput of the convolution kernels at the layer shapes
// of the pix2pix "paper" generator (unet_256) and the 70x70 PatchGAN, batch 1,
// plus a plain SGEMM sweep.
//
// Every measurement rotates through enough independent buffer sets that the
// timed call finds its operands in DRAM, not in the cache the previous call
// left warm; the table reports the median over the timed repetitions.

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/gemm.h"

namespace cpu = pixgrad::kernels::cpu;

namespace {

struct Options {
  bool quick = false;
  int reps = 10;
  int threads = 0;
  std::string json_path;
  bool skip_gemm = false;
  bool gemm_only = false;
  std::string isa;
};

struct Record {
  std::string layer, pass, shape;
  double ms, gflops;
};

// Buffer sets whose total size passes this are enough to flush the 32 MiB L3.
constexpr double kRotationBytes = 96.0 * 1024 * 1024;

// 64-byte aligned like the framework's tensor storage (some kernel paths,
// e.g. streaming stores, depend on it).
template <typename T>
struct CacheAligned {
  using value_type = T;
  CacheAligned() = default;
  template <typename U>
  CacheAligned(const CacheAligned<U>&) {}
  T* allocate(size_t n) {
    const size_t bytes = (n * sizeof(T) + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, bytes == 0 ? 64 : bytes);
    if (!p) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t) { std::free(p); }
  template <typename U>
  bool operator==(const CacheAligned<U>&) const { return true; }
  template <typename U>
  bool operator!=(const CacheAligned<U>&) const { return false; }
};
using Buffer = std::vector<float, CacheAligned<float>>;

Buffer random_buffer(size_t count, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  Buffer v(count);
  for (float& x : v) x = dist(rng);
  return v;
}

// Runs `call(set)` for warm-up and timed repetitions over `sets` buffer sets;
// returns the median time in milliseconds.
double median_ms(int sets, int warmup, int reps, const std::function<void(int)>& call) {
  int next = 0;
  for (int i = 0; i < warmup; ++i) call(next++ % sets);
  std::vector<double> times;
  for (int i = 0; i < reps; ++i) {
    const auto start = std::chrono::steady_clock::now();
    call(next++ % sets);
    const auto stop = std::chrono::steady_clock::now();
    times.push_back(std::chrono::duration<double, std::milli>(stop - start).count());
  }
  std::sort(times.begin(), times.end());
  const size_t n = times.size();
  return n % 2 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);
}

int rotation_sets(double bytes_per_set) {
  return std::clamp(static_cast<int>(kRotationBytes / std::max(bytes_per_set, 1.0)) + 1, 2, 16);
}

class Bench {
 public:
  explicit Bench(const Options& options)
      : warmup_(options.quick ? 1 : 2), reps_(options.reps), rng_(12345) {}

  void print_header() const {
    std::printf("%-26s %-16s %-44s %10s %10s\n", "layer", "pass", "shape", "ms", "GFLOP/s");
  }

  // One buffer set is the operands of one call of the pass.
  void measure(const std::string& layer, const std::string& pass, const std::string& shape,
               double flops, const std::vector<size_t>& sizes,
               const std::function<void(std::vector<Buffer>&)>& call) {
    double bytes = 0;
    for (size_t s : sizes) bytes += 4.0 * static_cast<double>(s);
    const int sets = rotation_sets(bytes);
    // One random set, copied: the values only need to be ordinary floats.
    std::vector<std::vector<Buffer>> buffers(static_cast<size_t>(sets));
    for (size_t s : sizes) buffers[0].push_back(random_buffer(s, rng_));
    for (size_t i = 1; i < buffers.size(); ++i) buffers[i] = buffers[0];
    const double ms = median_ms(sets, warmup_, reps_, [&](int i) { call(buffers[i]); });
    const double gflops = flops / (ms * 1e6);
    std::printf("%-26s %-16s %-44s %10.3f %10.1f\n", layer.c_str(), pass.c_str(), shape.c_str(),
                ms, gflops);
    std::fflush(stdout);
    records_.push_back({layer, pass, shape, ms, gflops});
  }

  const std::vector<Record>& records() const { return records_; }

 private:
  int warmup_, reps_;
  std::mt19937 rng_;
  std::vector<Record> records_;
};

std::string conv_shape(int64_t n, int64_t cin, int64_t h, int64_t w, int64_t cout, int64_t k,
                       int64_t s, int64_t p) {
  return std::to_string(n) + "x" + std::to_string(cin) + "x" + std::to_string(h) + "x" +
         std::to_string(w) + " -> " + std::to_string(cout) + " k" + std::to_string(k) + " s" +
         std::to_string(s) + " p" + std::to_string(p);
}

void bench_conv(Bench& bench, const std::string& layer, const cpu::Conv2dGeometry& g) {
  const size_t x = g.batch * g.in_channels * g.in_height * g.in_width;
  const size_t w = g.out_channels * g.in_channels * g.kernel_h * g.kernel_w;
  const size_t y = g.batch * g.out_channels * g.out_height() * g.out_width();
  const size_t b = g.out_channels;
  const double flops = 2.0 * static_cast<double>(y) * g.in_channels * g.kernel_h * g.kernel_w;
  const std::string shape = conv_shape(g.batch, g.in_channels, g.in_height, g.in_width,
                                       g.out_channels, g.kernel_h, g.stride, g.padding);
  bench.measure(layer, "forward", shape, flops, {x, w, b, y}, [&](auto& v) {
    cpu::conv2d_forward(g, v[0].data(), v[1].data(), v[2].data(), v[3].data());
  });
  bench.measure(layer, "backward_data", shape, flops, {y, w, x}, [&](auto& v) {
    cpu::conv2d_backward_data(g, v[0].data(), v[1].data(), v[2].data());
  });
  bench.measure(layer, "backward_weight", shape, flops, {x, y, w, b}, [&](auto& v) {
    cpu::conv2d_backward_weight(g, v[0].data(), v[1].data(), v[2].data(), v[3].data());
  });
}

void bench_conv_transpose(Bench& bench, const std::string& layer,
                          const cpu::ConvTranspose2dGeometry& g) {
  const size_t x = g.batch * g.in_channels * g.in_height * g.in_width;
  const size_t w = g.in_channels * g.out_channels * g.kernel_h * g.kernel_w;
  const size_t y = g.batch * g.out_channels * g.out_height() * g.out_width();
  const size_t b = g.out_channels;
  const double flops = 2.0 * static_cast<double>(x) * g.out_channels * g.kernel_h * g.kernel_w;
  const std::string shape = conv_shape(g.batch, g.in_channels, g.in_height, g.in_width,
                                       g.out_channels, g.kernel_h, g.stride, g.padding) +
                            " (T)";
  bench.measure(layer, "forward", shape, flops, {x, w, b, y}, [&](auto& v) {
    cpu::conv_transpose2d_forward(g, v[0].data(), v[1].data(), v[2].data(), v[3].data());
  });
  bench.measure(layer, "backward_data", shape, flops, {y, w, x}, [&](auto& v) {
    cpu::conv_transpose2d_backward_data(g, v[0].data(), v[1].data(), v[2].data());
  });
  bench.measure(layer, "backward_weight", shape, flops, {x, y, w, b}, [&](auto& v) {
    cpu::conv_transpose2d_backward_weight(g, v[0].data(), v[1].data(), v[2].data(),
                                          v[3].data());
  });
}

void bench_networks(Bench& bench) {
  // unet_256 encoder: 4x4 stride-2 pad-1 convolutions halving the resolution.
  struct Down {
    int64_t cin, cout, size;
  };
  const Down encoder[] = {{3, 64, 256},   {64, 128, 128}, {128, 256, 64}, {256, 512, 32},
                          {512, 512, 16}, {512, 512, 8},  {512, 512, 4},  {512, 512, 2}};
  for (const Down& d : encoder)
    bench_conv(bench,
               "unet.down " + std::to_string(d.cin) + "->" + std::to_string(d.cout) + " @" +
                   std::to_string(d.size),
               {1, d.cin, d.size, d.size, d.cout, 4, 4, 2, 1});
  // unet_256 decoder: 4x4 stride-2 pad-1 transposed convolutions doubling it
  // (inputs after the first are skip-concatenated, hence 1024/512/256/128).
  const Down decoder[] = {{512, 512, 1},   {1024, 512, 2}, {1024, 512, 4}, {1024, 512, 8},
                          {1024, 256, 16}, {512, 128, 32}, {256, 64, 64},  {128, 3, 128}};
  for (const Down& d : decoder)
    bench_conv_transpose(bench,
                         "unet.up " + std::to_string(d.cin) + "->" + std::to_string(d.cout) +
                             " @" + std::to_string(d.size),
                         {1, d.cin, d.size, d.size, d.cout, 4, 4, 2, 1});
  // 70x70 PatchGAN on the 6-channel (input, output) pair.
  struct Patch {
    int64_t cin, cout, size, stride;
  };
  const Patch patchgan[] = {
      {6, 64, 256, 2}, {64, 128, 128, 2}, {128, 256, 64, 2}, {256, 512, 32, 1}, {512, 1, 31, 1}};
  for (const Patch& p : patchgan)
    bench_conv(bench,
               "patchgan " + std::to_string(p.cin) + "->" + std::to_string(p.cout) + " @" +
                   std::to_string(p.size),
               {1, p.cin, p.size, p.size, p.cout, 4, 4, p.stride, 1});
}

void bench_gemm(Bench& bench, cpu::SgemmIsa isa) {
  struct Shape {
    int64_t M, N, K;
    bool ta, tb;
  };
  const Shape shapes[] = {
      {256, 256, 256, false, false},   {512, 512, 512, false, false},
      {1024, 1024, 1024, false, false}, {2048, 2048, 2048, false, false},
      {1024, 1024, 1024, true, false}, {1024, 1024, 1024, false, true},
      {1024, 1024, 1024, true, true},  {512, 256, 4096, false, false},
      {64, 16384, 48, false, false},   {512, 4, 8192, false, false},
      {4096, 256, 512, true, false},   {512, 4096, 256, false, true},
  };
  for (const Shape& s : shapes) {
    const std::string shape = "M" + std::to_string(s.M) + " N" + std::to_string(s.N) + " K" +
                              std::to_string(s.K) + " " + (s.ta ? "T" : "N") + (s.tb ? "T" : "N");
    const size_t a = s.M * s.K, b = s.K * s.N, c = s.M * s.N;
    bench.measure("sgemm", cpu::sgemm_isa_name(isa), shape, 2.0 * s.M * s.N * s.K, {a, b, c},
                  [&](auto& v) {
                    cpu::sgemm(isa, s.ta, s.tb, s.M, s.N, s.K, 1.0f, v[0].data(),
                               s.ta ? s.M : s.K, v[1].data(), s.tb ? s.K : s.N, 0.0f,
                               v[2].data(), s.N);
                  });
  }
}

std::string cpu_model() {
  std::ifstream info("/proc/cpuinfo");
  std::string line;
  while (std::getline(info, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  CLI::App app{"Benchmark the pixgrad CPU convolution and SGEMM kernels at U-Net/PatchGAN shapes"};
  app.add_flag("--quick", options.quick, "Few repetitions (about 30 s in all)");
  app.add_option("--reps", options.reps, "Timed repetitions per measurement (median reported)")
      ->check(CLI::PositiveNumber);
  app.add_option("--threads", options.threads, "OpenMP threads (default: OMP_NUM_THREADS or all)")
      ->check(CLI::PositiveNumber);
  app.add_option("--json", options.json_path, "Write one JSON record per measurement to FILE");
  app.add_flag("--skip-gemm", options.skip_gemm, "Leave out the plain SGEMM sweep");
  app.add_flag("--gemm-only", options.gemm_only, "Run only the plain SGEMM sweep");
  app.add_option("--isa", options.isa,
                 "Instruction set of the SGEMM sweep (default: the best this CPU supports)")
      ->check(CLI::IsMember({"avx512", "avx2", "scalar"}));
  CLI11_PARSE(app, argc, argv);

  cpu::SgemmIsa gemm_isa = cpu::sgemm_best_isa();
  for (cpu::SgemmIsa isa : {cpu::SgemmIsa::Avx512, cpu::SgemmIsa::Avx2, cpu::SgemmIsa::Scalar})
    if (options.isa == cpu::sgemm_isa_name(isa)) gemm_isa = isa;
  if (!cpu::sgemm_isa_supported(gemm_isa)) {
    std::cerr << "bench_kernels: this CPU does not support --isa " << options.isa << "\n";
    return 1;
  }

  if (options.quick && app.count("--reps") == 0) options.reps = 3;
  if (options.threads > 0) omp_set_num_threads(options.threads);

  std::printf("cpu: %s, %d threads, convolutions on %s, sgemm sweep on %s, %d reps (median)\n\n",
              cpu_model().c_str(), omp_get_max_threads(),
              cpu::sgemm_isa_name(cpu::sgemm_best_isa()), cpu::sgemm_isa_name(gemm_isa),
              options.reps);
  Bench bench(options);
  bench.print_header();
  if (!options.gemm_only) bench_networks(bench);
  if (!options.skip_gemm) bench_gemm(bench, gemm_isa);

  if (!options.json_path.empty()) {
    nlohmann::json records = nlohmann::json::array();
    for (const Record& r : bench.records())
      records.push_back({{"layer", r.layer},
                         {"pass", r.pass},
                         {"impl", "cpu"},
                         {"shape", r.shape},
                         {"ms", r.ms},
                         {"gflops", r.gflops}});
    std::ofstream out(options.json_path);
    if (!out) {
      std::cerr << "bench_kernels: cannot write " << options.json_path << "\n";
      return 1;
    }
    out << records.dump(2) << "\n";
  }
  return 0;
}
