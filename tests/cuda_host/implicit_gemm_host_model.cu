// The handwritten CUDA convolution's kernel, run on the host.
//
// kernels/cuda/conv2d_implicit_gemm.cu writes its kernel as a block program
// (gemm_block_program) of per-thread steps (GemmThread) between barriers,
// all __host__ __device__. Included here with the device launches left out,
// that very program runs for every block of the grid the launcher would
// use, each segment between two barriers for the block's 256 threads in
// turn; the split-K reduction runs likewise. Shared memory and the split-K scratch
// start as NaN and the operands sit between NaN guards, so a read of
// anything not written, or outside an operand, shows in the result. Each
// segment runs with the threads in ascending and in descending order: a
// thread reading what another writes within the same segment (a missing
// barrier) gives different results.
//
// Checked against a direct convolution in double, for the three passes,
// every tile configuration (not only the one the launcher picks), SM counts
// that give no split, some and many, and shapes with odd sizes, strides 1
// to 5 and channel counts around the tile edges. The bound is 1e-5 of the
// sum of the terms' magnitudes, which TF32 rounding (2^-11) exceeds.
//
// What this cannot show: timing, alignment faults of the float4 loads,
// the __grid_constant__ parameter block, launch limits, the device's own
// rounding of fmaf (the same IEEE operation on both sides here).
//
// Runs as a CTest in CUDA builds (nvcc compiles it); needs no GPU.
#define PIXGRAD_CONV_HOST_MODEL 1
#include "../../kernels/cuda/conv2d_implicit_gemm.cu"

#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace model {

using namespace pixgrad::kernels;
using namespace pixgrad::kernels::cuda::detail;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr size_t kGuard = 256;  // NaN floats on each side of an operand

// An operand between NaN guards.
struct Guarded {
  std::vector<float> storage;
  explicit Guarded(size_t n) : storage(n + 2 * kGuard, kNaN) {}
  float* data() { return storage.data() + kGuard; }
  size_t size() const { return storage.size() - 2 * kGuard; }
};

Guarded random_operand(size_t n, std::mt19937& random) {
  std::uniform_real_distribution<float> uniform(-1, 1);
  Guarded g(n);
  for (size_t i = 0; i < n; ++i) g.data()[i] = uniform(random);
  return g;
}

// Blocks whose threads did not all agree to run (should stay 0).
int64_t split_blocks = 0;

// Runs the kernel of configuration Cfg for `p` as a launch would, on the host.
template <class Op, class Cfg>
void run_on_host(typename Op::Params p, int phases, int max_n, int max_k, int64_t sm_count, bool reverse) {
  const dim3 grid = prepare_launch<Op, Cfg>(p, phases, max_n, max_k, sm_count);
  std::vector<float> partial;
  if (p.common.splits > 1) {
    partial.assign(static_cast<size_t>(phases) * p.common.splits * p.common.M * max_n, kNaN);
    p.common.partial = partial.data();
  }
  using Thread = GemmThread<Op, Cfg>;
  auto shared = std::make_unique<GemmShared<Cfg>>();
  std::vector<Thread> threads(Cfg::kThreads);
  const auto each = [&](auto&& step) {
    if (reverse) {
      for (int i = Cfg::kThreads - 1; i >= 0; --i) step(threads[static_cast<size_t>(i)]);
    } else {
      for (Thread& t : threads) step(t);
    }
  };
  for (unsigned int z = 0; z < grid.z; ++z)
    for (unsigned int y = 0; y < grid.y; ++y)
      for (unsigned int x = 0; x < grid.x; ++x) {
        float* words = &shared->a[0][0][0];
        std::fill(words, words + sizeof(shared->a) / sizeof(float), kNaN);
        words = &shared->b[0][0][0];
        std::fill(words, words + sizeof(shared->b) / sizeof(float), kNaN);
        for (auto& slot : shared->k_table)
          for (int4& entry : slot) entry = make_int4(1 << 29, 1 << 29, 1 << 29, 1 << 29);
        int active = 0, i = 0;
        for (Thread& t : threads) active += t.setup(p, i++, uint3{x, y, z}) ? 1 : 0;
        // A block whose threads disagree would leave some waiting at a barrier for ever.
        if (active != 0 && active != Cfg::kThreads) ++split_blocks;
        if (active != Cfg::kThreads) continue;  // the kernel's threads return before the first barrier
        // Every thread of a block has the same K range.
        gemm_block_program<Op, Cfg>(p, *shared, threads[0].k_begin, threads[0].k_end, each, [] {});
      }
  if (p.common.splits > 1)
    for (int phase = 0; phase < phases; ++phase)
      for (int m = 0; m < p.common.M; ++m)
        for (int n = 0; n < Op::n_size(p, phase); ++n) reduce_splits<Op>(p, phase, m, n);
}

// Direct convolution in double: each output's value and the sum of its terms' magnitudes.
struct Reference {
  std::vector<double> value, magnitude;
};

Reference forward_reference(const Conv2dGeometry& g, const float* x, const float* w, const float* bias) {
  const int64_t OH = g.out_height(), OW = g.out_width();
  Reference r{std::vector<double>(static_cast<size_t>(g.batch * g.out_channels * OH * OW)), {}};
  r.magnitude.assign(r.value.size(), 0.0);
  for (int64_t b = 0; b < g.batch; ++b)
    for (int64_t co = 0; co < g.out_channels; ++co)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double sum = bias[co], magnitude = std::abs(bias[co]);
          for (int64_t ci = 0; ci < g.in_channels; ++ci)
            for (int64_t i = 0; i < g.kernel_h; ++i)
              for (int64_t j = 0; j < g.kernel_w; ++j) {
                const int64_t ih = oh * g.stride - g.padding + i, iw = ow * g.stride - g.padding + j;
                if (ih < 0 || ih >= g.in_height || iw < 0 || iw >= g.in_width) continue;
                const double term = static_cast<double>(w[((co * g.in_channels + ci) * g.kernel_h + i) * g.kernel_w + j]) *
                                    x[((b * g.in_channels + ci) * g.in_height + ih) * g.in_width + iw];
                sum += term;
                magnitude += std::abs(term);
              }
          const size_t at = static_cast<size_t>(((b * g.out_channels + co) * OH + oh) * OW + ow);
          r.value[at] = sum;
          r.magnitude[at] = magnitude;
        }
  return r;
}

// Both gradients of the convolution by scattering every term: dX and dW.
void backward_reference(const Conv2dGeometry& g, const float* x, const float* w, const float* dy, Reference& dx,
                        Reference& dw) {
  const int64_t OH = g.out_height(), OW = g.out_width();
  dx.value.assign(static_cast<size_t>(g.batch * g.in_channels * g.in_height * g.in_width), 0.0);
  dx.magnitude.assign(dx.value.size(), 0.0);
  dw.value.assign(static_cast<size_t>(g.out_channels * g.in_channels * g.kernel_h * g.kernel_w), 0.0);
  dw.magnitude.assign(dw.value.size(), 0.0);
  for (int64_t b = 0; b < g.batch; ++b)
    for (int64_t co = 0; co < g.out_channels; ++co)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          const double grad = dy[((b * g.out_channels + co) * OH + oh) * OW + ow];
          for (int64_t ci = 0; ci < g.in_channels; ++ci)
            for (int64_t i = 0; i < g.kernel_h; ++i)
              for (int64_t j = 0; j < g.kernel_w; ++j) {
                const int64_t ih = oh * g.stride - g.padding + i, iw = ow * g.stride - g.padding + j;
                if (ih < 0 || ih >= g.in_height || iw < 0 || iw >= g.in_width) continue;
                const size_t xi = static_cast<size_t>(((b * g.in_channels + ci) * g.in_height + ih) * g.in_width + iw);
                const size_t wi = static_cast<size_t>(((co * g.in_channels + ci) * g.kernel_h + i) * g.kernel_w + j);
                dx.value[xi] += grad * w[wi];
                dx.magnitude[xi] += std::abs(grad * w[wi]);
                dw.value[wi] += grad * x[xi];
                dw.magnitude[wi] += std::abs(grad * x[xi]);
              }
        }
}

// Elements off by more than the bound (NaN counts as off), and the worst ratio to it.
struct Verdict {
  int64_t failures = 0;
  double worst = 0;
};

Verdict compare(Guarded& actual, const Reference& expected) {
  Verdict v;
  for (size_t i = 0; i < expected.value.size(); ++i) {
    const double bound = 1e-5 * expected.magnitude[i] + 1e-30;
    const double error = std::abs(static_cast<double>(actual.data()[i]) - expected.value[i]);
    const double ratio = error / bound;
    if (!(ratio <= 1)) ++v.failures;
    if (!(ratio <= v.worst)) v.worst = std::isnan(ratio) ? std::numeric_limits<double>::infinity() : ratio;
  }
  for (size_t i = 0; i < kGuard; ++i)  // the guards are never written
    if (!std::isnan(actual.storage[i]) || !std::isnan(actual.storage[actual.storage.size() - 1 - i])) ++v.failures;
  return v;
}

struct Tally {
  int runs = 0, failed = 0;
  void record(const std::string& what, const Verdict& v) {
    ++runs;
    if (v.failures == 0) return;
    ++failed;
    std::printf("FAILED %s: %lld element(s) outside the bound (worst %.3g x the bound)\n", what.c_str(),
                static_cast<long long>(v.failures), v.worst);
  }
};

template <class Cfg>
void check_configuration(const char* name, const Conv2dGeometry& g, const std::string& shape, Guarded& x,
                         Guarded& w, Guarded& bias, Guarded& dy, const Reference& y_ref, const Reference& dx_ref,
                         const Reference& dw_ref, Tally& tally) {
  struct Run {
    int64_t sm_count;
    bool reverse;
  };
  for (const Run run : {Run{1, false}, Run{132, false}, Run{132, true}, Run{100000, false}}) {
    const std::string what = shape + ", tile " + name + ", " + std::to_string(run.sm_count) + " SMs" +
                             (run.reverse ? ", threads in reverse" : "");
    Guarded y(y_ref.value.size());
    ForwardOp::Params forward = forward_params(g, x.data(), w.data(), bias.data(), y.data());
    run_on_host<ForwardOp, Cfg>(forward, 1, forward.N, forward.K, run.sm_count, run.reverse);
    tally.record("forward, " + what, compare(y, y_ref));

    Guarded dx(dx_ref.value.size());
    backward_data_launches(g, dy.data(), w.data(), dx.data(),
                           [&](BackwardDataOp::Params& p, int phases, int max_n, int max_k) {
                             run_on_host<BackwardDataOp, Cfg>(p, phases, max_n, max_k, run.sm_count, run.reverse);
                           });
    tally.record("backward data, " + what, compare(dx, dx_ref));

    Guarded dw(dw_ref.value.size());
    BackwardWeightOp::Params weight = backward_weight_params(g, x.data(), dy.data(), dw.data());
    run_on_host<BackwardWeightOp, Cfg>(weight, 1, weight.N, weight.K, run.sm_count, run.reverse);
    tally.record("backward weight, " + what, compare(dw, dw_ref));
  }
}

}  // namespace model

int main() {
  using namespace model;
  // {batch, Cin, H, W, Cout, kh, kw, stride, padding}: pix2pix's 4x4 stride-2
  // layers at odd sizes, 1x1 and 5x5 kernels, strides up to 5 (two launches
  // of stride phases), channel counts around the tile edges (8, 32, 64, 128).
  const std::vector<Conv2dGeometry> shapes = {
      {1, 3, 9, 7, 1, 4, 4, 2, 1},    {2, 5, 8, 8, 9, 4, 4, 2, 1},   {1, 12, 6, 6, 33, 3, 3, 1, 1},
      {1, 7, 5, 11, 65, 1, 1, 1, 0},  {2, 3, 13, 9, 8, 5, 5, 3, 2},  {1, 4, 12, 12, 3, 5, 5, 5, 2},
      {1, 129, 2, 2, 130, 4, 4, 2, 1}, {3, 2, 4, 6, 31, 2, 3, 1, 0}, {1, 1, 1, 1, 1, 1, 1, 1, 0},
      {1, 40, 3, 5, 64, 4, 4, 2, 1},
  };
  std::mt19937 random(20261205);
  Tally tally;
  for (const Conv2dGeometry& g : shapes) {
    char shape[160];
    std::snprintf(shape, sizeof shape, "batch %lld, %lldx%lldx%lld -> %lld, kernel %lldx%lld, stride %lld, pad %lld",
                  static_cast<long long>(g.batch), static_cast<long long>(g.in_channels),
                  static_cast<long long>(g.in_height), static_cast<long long>(g.in_width),
                  static_cast<long long>(g.out_channels), static_cast<long long>(g.kernel_h),
                  static_cast<long long>(g.kernel_w), static_cast<long long>(g.stride),
                  static_cast<long long>(g.padding));
    Guarded x = random_operand(static_cast<size_t>(g.batch * g.in_channels * g.in_height * g.in_width), random);
    Guarded w = random_operand(static_cast<size_t>(g.out_channels * g.in_channels * g.kernel_h * g.kernel_w), random);
    Guarded bias = random_operand(static_cast<size_t>(g.out_channels), random);
    Guarded dy = random_operand(static_cast<size_t>(g.batch * g.out_channels * g.out_height() * g.out_width()), random);
    const Reference y_ref = forward_reference(g, x.data(), w.data(), bias.data());
    Reference dx_ref, dw_ref;
    backward_reference(g, x.data(), w.data(), dy.data(), dx_ref, dw_ref);
    const int before = tally.failed;
    check_configuration<TileLarge>("128x128", g, shape, x, w, bias, dy, y_ref, dx_ref, dw_ref, tally);
    check_configuration<TileMedium>("64x128", g, shape, x, w, bias, dy, y_ref, dx_ref, dw_ref, tally);
    check_configuration<TileSmall>("32x128", g, shape, x, w, bias, dy, y_ref, dx_ref, dw_ref, tally);
    check_configuration<TileTiny>("8x256", g, shape, x, w, bias, dy, y_ref, dx_ref, dw_ref, tally);
    check_configuration<TileNarrow>("128x32", g, shape, x, w, bias, dy, y_ref, dx_ref, dw_ref, tally);
    std::printf("%s %s\n", tally.failed == before ? "ok    " : "FAILED", shape);
  }
  std::printf("%d host runs of the kernel (3 passes x 5 tiles x 4 launch plans per shape), %d failed\n", tally.runs,
              tally.failed);
  if (split_blocks > 0) std::printf("FAILED: %lld block(s) whose threads disagreed in setup()\n",
                                    static_cast<long long>(split_blocks));
  return tally.failed == 0 && split_blocks == 0 ? 0 : 1;
}
