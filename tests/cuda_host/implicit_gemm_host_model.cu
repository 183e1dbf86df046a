// The handwritten CUDA convolution's kernel, run on the host.
//
// kernels/cuda/conv2d_implicit_gemm.cu writes its kernel as a block program
// (gemm_block_program) of per-thread steps (GemmThread) between barriers,
// all __host__ __device__. Included here with the device launches left out,
// that very program runs for every block of the grid the launcher would
// use, split-K's hand-over included: a tile's last block to arrive sums the
// splits. The blocks run in grid order or shuffled, and results with the
// same split must agree bit for bit whichever block summed them; every
// tile's counter must be back at zero after the launch. Each of a block's 8 warps runs
// the program on a host thread of its own, and the warps take turns, one
// segment between two of the kernel's barriers (sync()) at a time, in
// ascending or in descending order, each warp's lanes in that order too. So
// a warp reading what another writes in the same segment, or a barrier
// missing (one warp then runs on into the next segment before the others
// have run this one), gives different results. Shared memory and the
// split-K scratch start as NaN and the operands sit between NaN guards, so
// a read of anything not written, or outside an operand, shows.
//
// The tensor-core forms (TF32, 3xTF32 and bf16) run the same way, except
// for the mma.sync instruction itself, which no thread can compute alone: a
// stand-in records each thread's calls, and once a warp's 32 lanes have run
// a step its calls are played from the PTX ISA's fragment tables, written
// out below independently of the kernel's own index arithmetic. Their
// cp.async copies are held back per thread until its wait lets them land,
// their destinations NaN meanwhile: a read too early, a barrier missing
// after the wait, or a copy into a stage still being read all show.
//
// Checked against a direct convolution in double, for the three passes,
// every tile configuration (not only the one the launcher picks), SM counts
// that give no split, some and many, and shapes with odd sizes, strides 1
// to 5 and channel counts around the tile edges:
//   - operands that are small integers, exact in TF32, bf16 and every partial
//     sum: all four maths must give the double reference exactly, so any
//     misplaced fragment element shows;
//   - random operands: FP32 and 3xTF32 within 1e-5 of the sum of the terms'
//     magnitudes, a bound TF32 rounding (2^-11 per operand) exceeds, TF32
//     within 1.2e-3 of it and bf16 (2^-8 per operand) within 1e-2; TF32 and
//     bf16 must also exceed the 1e-5 bound in every result, which shows that
//     their operands really are rounded, and bf16 TF32's bound somewhere;
//   - to_bf16 against a rounding worked out another way, on a million
//     random floats and the edge cases.
//
// What this cannot show: timing, split-K's memory ordering between blocks
// running at once (the fence, the atomic ticket and the L2 reads; here the
// blocks run one after another), alignment faults of the float4 loads,
// the __grid_constant__ parameter block, launch limits and the dynamic
// shared memory request, the device's own rounding of fmaf (the same IEEE
// operation on both sides here), the order and rounding of the tensor cores'
// internal sums, and that the inline assembly binds a0..a3, b0..b1, d0..d3
// in the order written and that cp.async's source size 0 writes zeros
// (checked by reading them: WarpMma and AsyncCopy in the kernel).
//
// Runs as a CTest in CUDA builds (nvcc compiles it); needs no GPU.
#define PIXGRAD_CONV_HOST_MODEL 1
#include "../../kernels/cuda/conv2d_implicit_gemm.cu"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
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
// Asynchronous copies still in flight when a block ended (should stay 0).
int64_t unwaited_copies = 0;
// Warp instructions whose lanes disagreed or whose operands were not TF32 (should stay 0).
int64_t mma_faults = 0;

// mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 for one warp, from the
// PTX ISA's fragment tables (g = lane >> 2, t = lane & 3):
//   A 16x8: register a_r of lane holds A[g + 8*(r & 1)][t + 4*(r >> 1)]
//   B 8x8:  register b_h holds B[t + 4*h][g]
//   C, D 16x8: register c_i holds C[g + 8*(i >> 1)][2*t + (i & 1)]
// mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32: each register holds
// two elements, element i in half i & 1 (the low half first):
//   A 16x16: element i of lane is in register i >> 1, at row g for
//            i in {0, 1, 4, 5} and g + 8 otherwise, column 2*t + (i & 1),
//            plus 8 for i >= 4
//   B 16x8:  element i is in register i >> 1, at row 2*t + (i & 1), plus 8
//            for i >= 2, column g
//   C, D:    as for m16n8k8
// The products of TF32 or bf16 values are exact in double; each output is
// rounded to float once.
struct RecordedMma {
  float* d;
  uint32_t a[4];
  uint32_t b[2];
};

struct WarpPlayer {
  std::vector<std::vector<RecordedMma>> calls;  // per thread of the block, in call order
  int current = 0;                              // the thread running now
  bool bf16;                                    // the m16n8k16 .bf16 instruction, else m16n8k8 .tf32

  WarpPlayer(int threads, bool bf16_operands) : calls(static_cast<size_t>(threads)), bf16(bf16_operands) {}

  static double bf16_value(uint32_t reg, int half) {
    return static_cast<double>(bits_float(half == 0 ? reg << 16 : reg & 0xffff0000u));
  }

  static double tf32_value(uint32_t bits) {
    if ((bits & 0x1fffu) != 0) ++mma_faults;  // the kernel must round before the instruction
    return static_cast<double>(bits_float(bits));
  }

  void play() {
    for (size_t warp = 0; warp * 32 < calls.size(); ++warp) {
      std::vector<RecordedMma>* lanes = &calls[warp * 32];
      const size_t count = lanes[0].size();
      for (int lane = 1; lane < 32; ++lane)
        if (lanes[lane].size() != count) ++mma_faults;
      for (size_t call = 0; call < count; ++call) {
        const int depth = bf16 ? 16 : 8;
        double A[16][16], B[16][8], C[16][8];
        for (int lane = 0; lane < 32; ++lane) {
          if (lanes[lane].size() <= call) continue;
          const RecordedMma& r = lanes[lane][call];
          const int g = lane >> 2, t = lane & 3;
          if (bf16) {
            for (int i = 0; i < 8; ++i) {
              const int row = (i == 0 || i == 1 || i == 4 || i == 5) ? g : g + 8;
              const int col = 2 * t + (i & 1) + (i >= 4 ? 8 : 0);
              A[row][col] = bf16_value(r.a[i >> 1], i & 1);
            }
            for (int i = 0; i < 4; ++i) B[2 * t + (i & 1) + (i >= 2 ? 8 : 0)][g] = bf16_value(r.b[i >> 1], i & 1);
          } else {
            for (int i = 0; i < 4; ++i) A[g + 8 * (i & 1)][t + 4 * (i >> 1)] = tf32_value(r.a[i]);
            for (int h = 0; h < 2; ++h) B[t + 4 * h][g] = tf32_value(r.b[h]);
          }
          for (int i = 0; i < 4; ++i) C[g + 8 * (i >> 1)][2 * t + (i & 1)] = r.d[i];
        }
        for (int lane = 0; lane < 32; ++lane) {
          if (lanes[lane].size() <= call) continue;
          const RecordedMma& r = lanes[lane][call];
          const int g = lane >> 2, t = lane & 3;
          for (int i = 0; i < 4; ++i) {
            const int row = g + 8 * (i >> 1), col = 2 * t + (i & 1);
            double sum = C[row][col];
            for (int k = 0; k < depth; ++k) sum += A[row][k] * B[k][col];
            r.d[i] = static_cast<float>(sum);
          }
        }
      }
      for (int lane = 0; lane < 32; ++lane) lanes[lane].clear();
    }
  }
};

// The kernel's `mma` on the host: records the call for WarpPlayer. (Declared
// for both sides like the kernel code that calls it; only the host runs it.)
struct RecordingMma {
  WarpPlayer* player;
  __host__ __device__ void operator()(float* d, const uint32_t* a, const uint32_t* b) const {
#ifndef __CUDA_ARCH__
    player->calls[static_cast<size_t>(player->current)].push_back({d, {a[0], a[1], a[2], a[3]}, {b[0], b[1]}});
#else
    (void)d, (void)a, (void)b;
#endif
  }
};

template <class Tiles>
void fill_with_nan(Tiles& tiles) {
  std::fill(&tiles.a[0][0][0], &tiles.a[0][0][0] + sizeof(tiles.a) / sizeof(float), kNaN);
  std::fill(&tiles.b[0][0][0], &tiles.b[0][0][0] + sizeof(tiles.b) / sizeof(float), kNaN);
}

// cp.async on the host: each thread's copies are held back, as groups in
// commit order, until its wait lets them land; the destination reads as NaN
// meanwhile, so a read before the wait (or before the barrier after another
// thread's wait), or a copy into a buffer still being read, shows.
struct PendingCopy {
  float* destination;
  float value;
};

struct CopyQueue {
  std::vector<std::vector<PendingCopy>> open;                  // per thread: not yet committed
  std::vector<std::vector<std::vector<PendingCopy>>> groups;  // per thread: committed, oldest first
  const int* current;                                          // the thread running now

  CopyQueue(int threads, const int* running) : open(static_cast<size_t>(threads)), groups(static_cast<size_t>(threads)), current(running) {}

  void block_ended() {
    for (size_t i = 0; i < groups.size(); ++i) {
      for (const auto& group : groups[i]) unwaited_copies += static_cast<int64_t>(group.size());
      unwaited_copies += static_cast<int64_t>(open[i].size());
      groups[i].clear();
      open[i].clear();
    }
  }
};

struct RecordingCopy {
  CopyQueue* queue;
  __host__ __device__ void operator()(float* destination, const float* source, bool valid) const {
#ifndef __CUDA_ARCH__
    queue->open[static_cast<size_t>(*queue->current)].push_back({destination, valid ? *source : 0.0f});
    *destination = kNaN;
#else
    (void)destination, (void)source, (void)valid;
#endif
  }
  __host__ __device__ void commit() const {
#ifndef __CUDA_ARCH__
    const size_t thread = static_cast<size_t>(*queue->current);
    queue->groups[thread].push_back(std::move(queue->open[thread]));
    queue->open[thread].clear();
#endif
  }
  template <int Pending>
  __host__ __device__ void wait() const {
#ifndef __CUDA_ARCH__
    auto& groups = queue->groups[static_cast<size_t>(*queue->current)];
    while (groups.size() > static_cast<size_t>(Pending)) {
      for (const PendingCopy& copy : groups.front()) *copy.destination = copy.value;
      groups.erase(groups.begin());
    }
#endif
  }
};

// Split-K's hand-over on the host: blocks run one after another, so a ticket
// is a plain count. Counters left non-zero after a launch (should stay 0)
// would make the next launch's blocks miscount.
int64_t counters_left_set = 0;

struct HostArrivals {
  __host__ __device__ void publish() const {}
  __host__ __device__ unsigned int take_ticket(unsigned int* counter) const { return (*counter)++; }
  __host__ __device__ float load(const float* source) const { return *source; }
  __host__ __device__ void reset(unsigned int* counter) const { *counter = 0; }
};

template <class Math>
constexpr bool bf16_operands() {
  if constexpr (Math::kPasses == 0)
    return false;
  else
    return Math::kBf16;
}

// Runs the kernel of configuration Cfg and Math for `p` as a launch would, on the host.
template <class Op, class Cfg, class Math>
void run_on_host(typename Op::Params p, int phases, int max_n, int max_k, int64_t sm_count, bool reverse) {
  const dim3 grid = prepare_launch<Op, Cfg>(p, phases, max_n, max_k, 2 * sm_count);  // two blocks per SM, as on an H100
  std::vector<float> partial;
  std::vector<unsigned int> arrivals(static_cast<size_t>(grid.x) * grid.y * static_cast<size_t>(phases), 0u);
  if (p.common.splits > 1) {
    partial.assign(static_cast<size_t>(phases) * p.common.splits * p.common.M * max_n, kNaN);
    p.common.partial = partial.data();
    p.common.tile_arrivals = arrivals.data();
  }
  // The blocks in grid order, or (with `reverse`) shuffled, so that the last
  // split of a tile to arrive, the one that sums them, is not always the
  // last in split order.
  std::vector<uint3> blocks;
  for (unsigned int z = 0; z < grid.z; ++z)
    for (unsigned int y = 0; y < grid.y; ++y)
      for (unsigned int x = 0; x < grid.x; ++x) blocks.push_back(uint3{x, y, z});
  if (reverse) {
    std::mt19937 order(static_cast<unsigned int>(blocks.size()));
    std::shuffle(blocks.begin(), blocks.end(), order);
  }
  using Thread = GemmThread<Op, Cfg, Math>;
  auto shared = std::make_unique<GemmShared<Cfg, Math>>();
  std::vector<Thread> threads(Cfg::kThreads);
  WarpPlayer player(Cfg::kThreads, bf16_operands<Math>());
  CopyQueue copies(Cfg::kThreads, &player.current);
  // Every warp runs on a host thread of its own, and the warps take turns, a
  // whole segment between two of the kernel's barriers at a time, in
  // ascending or descending order: only the kernel's sync() separates what
  // different warps do, so a missing barrier lets one warp run ahead.
  constexpr int kWarps = Cfg::kThreads / 32;
  std::mutex mutex;
  std::condition_variable changed;
  int turn = 0;  // position in the warp order whose turn it is
  const auto warp_at = [&](int position) { return reverse ? kWarps - 1 - position : position; };
  for (const uint3 block : blocks) {
    fill_with_nan(*shared);
    if constexpr (Math::kPasses == 3) fill_with_nan(shared->low);
    for (auto& slot : shared->k_table)
      for (int4& entry : slot) entry = make_int4(1 << 29, 1 << 29, 1 << 29, 1 << 29);
    shared->ticket = 0xdeadbeefu;
    int active = 0, i = 0;
    for (Thread& t : threads) active += t.setup(p, i++, block) ? 1 : 0;
    // A block whose threads disagree would leave some waiting at a barrier for ever.
    if (active != 0 && active != Cfg::kThreads) ++split_blocks;
    if (active != Cfg::kThreads) continue;  // the kernel's threads return before the first barrier
    turn = 0;
    std::vector<std::thread> warps;
    for (int position = 0; position < kWarps; ++position)
      warps.emplace_back([&, position] {
        const int warp = warp_at(position);
        const auto pass_turn = [&] {  // end of this warp's segment: the next warp's turn
          turn = (turn + 1) % kWarps;
          changed.notify_all();
        };
        std::unique_lock<std::mutex> lock(mutex);
        changed.wait(lock, [&] { return turn == position; });
        const auto each = [&](auto&& step) {
          for (int k = 0; k < 32; ++k) {
            player.current = warp * 32 + (reverse ? 31 - k : k);
            step(threads[static_cast<size_t>(player.current)]);
          }
          player.play();  // this warp's instructions
        };
        const auto sync = [&] {
          pass_turn();
          changed.wait(lock, [&] { return turn == position; });
        };
        gemm_block_program<Op, Cfg, Math>(p, *shared, threads[0].k_begin, threads[0].k_end, each, sync,
                                          RecordingMma{&player}, RecordingCopy{&copies}, HostArrivals{});
        pass_turn();
      });
    for (std::thread& warp : warps) warp.join();
    copies.block_ended();
  }
  for (const unsigned int count : arrivals) counters_left_set += count != 0 ? 1 : 0;
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

// The bound of element i is `relative` times the sum of its terms'
// magnitudes; 0 asks for the reference exactly. Where the reference is not
// finite the result must be the same infinity or NaN, or with
// `any_nonfinite` merely not finite.
Verdict compare(Guarded& actual, const Reference& expected, double relative, bool any_nonfinite = false) {
  Verdict v;
  for (size_t i = 0; i < expected.value.size(); ++i) {
    if (!std::isfinite(expected.value[i])) {  // an infinite operand: the same infinity, or NaN for NaN
      const double a = actual.data()[i], e = expected.value[i];
      if (!(a == e || (std::isnan(a) && std::isnan(e)) || (any_nonfinite && !std::isfinite(a)))) ++v.failures;
      continue;
    }
    const double bound = relative * expected.magnitude[i] + 1e-30;
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
  void record_differences(const std::string& what, int64_t differing) {
    ++runs;
    if (differing == 0) return;
    ++failed;
    std::printf("FAILED %s: %lld element(s) differ\n", what.c_str(), static_cast<long long>(differing));
  }
};

// A shape's operands and the three references.
struct Case {
  Conv2dGeometry g;
  std::string shape;
  bool integers;  // small integers: every sum exact, the reference must be met exactly
  Guarded x, w, bias, dy;
  Reference y, dx, dw;
};

Guarded operand(size_t n, std::mt19937& random, bool integers) {
  if (!integers) return random_operand(n, random);
  std::uniform_int_distribution<int> small(-4, 4);
  Guarded g(n);
  for (size_t i = 0; i < n; ++i) g.data()[i] = static_cast<float>(small(random));
  return g;
}

Case make_case(const Conv2dGeometry& g, const std::string& shape, bool integers, std::mt19937& random) {
  Case c{g,
         shape + (integers ? ", integer operands" : ", random operands"),
         integers,
         operand(static_cast<size_t>(g.batch * g.in_channels * g.in_height * g.in_width), random, integers),
         operand(static_cast<size_t>(g.out_channels * g.in_channels * g.kernel_h * g.kernel_w), random, integers),
         operand(static_cast<size_t>(g.out_channels), random, integers),
         operand(static_cast<size_t>(g.batch * g.out_channels * g.out_height() * g.out_width()), random, integers),
         {}, {}, {}};
  c.y = forward_reference(g, c.x.data(), c.w.data(), c.bias.data());
  backward_reference(g, c.x.data(), c.w.data(), c.dy.data(), c.dx, c.dw);
  return c;
}

struct Plan {
  int64_t sm_count;
  bool reverse;
};

// Math's bound on random operands, and whether it must also miss the FP32
// bound somewhere (TF32: its operands are rounded).
template <class Math>
struct Accuracy;
template <>
struct Accuracy<SimtFp32> {
  static constexpr const char* name = "fp32";
  static constexpr double bound = 1e-5;
  static constexpr bool rounds = false;
  static constexpr bool keeps_infinities = true;
};
template <>
struct Accuracy<Tf32> {
  static constexpr const char* name = "tf32";
  static constexpr double bound = 1.2e-3;
  static constexpr bool rounds = true;
  static constexpr bool keeps_infinities = true;
};
template <>
struct Accuracy<Tf32x3> {
  static constexpr const char* name = "3xtf32";
  static constexpr double bound = 1e-5;
  static constexpr bool rounds = false;
  // The correction products meet 0 * inf or +inf - inf: an infinity may come out as NaN.
  static constexpr bool keeps_infinities = false;
};
template <>
struct Accuracy<Bf16> {
  static constexpr const char* name = "bf16";
  // Each operand within 2^-8 of itself (relative), so each product within
  // about 2^-7; with the same margin as TF32's bound over its 2^-10.
  static constexpr double bound = 1e-2;
  static constexpr bool rounds = true;
  static constexpr bool keeps_infinities = true;
};

constexpr double kFp32Bound = 1e-5;
constexpr double kTf32Bound = Accuracy<Tf32>::bound;
// Random-operand results of a rounding math, and those that missed the FP32
// bound (each must: its operands are rounded); bf16 results that missed
// TF32's bound (some must: bf16 rounds coarser).
int rounded_runs = 0, rounded_runs_missing_fp32 = 0, bf16_runs_missing_tf32 = 0;

template <class Math>
void record(const std::string& what, Case& c, Guarded& actual, const Reference& expected, Tally& tally) {
  if (c.integers) return tally.record(what, compare(actual, expected, 0.0));
  tally.record(what, compare(actual, expected, Accuracy<Math>::bound, !Accuracy<Math>::keeps_infinities));
  if (Accuracy<Math>::rounds) {
    ++rounded_runs;
    if (compare(actual, expected, kFp32Bound).failures > 0) ++rounded_runs_missing_fp32;
    if (bf16_operands<Math>() && compare(actual, expected, kTf32Bound).failures > 0) ++bf16_runs_missing_tf32;
  }
}

// to_bf16 against a rounding worked out another way: the two bf16 values
// around x (truncated, and one unit above) and the nearer of them, the one
// with an even last bit on a tie. Returns the number of disagreements.
int check_bf16_rounding(std::mt19937& random) {
  std::uniform_int_distribution<uint32_t> any_bits;
  int wrong = 0;
  const auto check = [&](uint32_t bits) {
    const float x = bits_float(bits);
    const uint32_t got = to_bf16(x);
    if (std::isnan(x)) {
      wrong += std::isnan(bits_float(got)) && (got & 0xffffu) == 0 ? 0 : 1;
      return;
    }
    const uint32_t below = bits & 0xffff0000u, above = below + 0x10000u;
    const double distance_below = std::fabs(static_cast<double>(x) - bits_float(below));
    const double distance_above = std::isinf(bits_float(above)) || std::isnan(bits_float(above))
                                      ? std::ldexp(1.0, 128) - std::fabs(static_cast<double>(x))
                                      : std::fabs(bits_float(above) - static_cast<double>(x));
    uint32_t want = distance_below < distance_above ? below : distance_above < distance_below ? above
                    : ((below >> 16) & 1u) == 0 ? below : above;
    if (std::isinf(x)) want = bits;
    if (got != want) ++wrong;
  };
  for (int i = 0; i < 1000000; ++i) check(any_bits(random));
  // Ties, both parities, both signs; the largest floats; infinities; denormals.
  for (uint32_t bits : {0x3f808000u, 0x3f818000u, 0xbf808000u, 0xbf818000u, 0x7f7fffffu, 0x7f7f8000u, 0x7f7f7fffu,
                        0xff7fffffu, 0x7f800000u, 0xff800000u, 0x00008000u, 0x00018000u, 0x00000001u, 0x7fc00001u})
    check(bits);
  return wrong;
}

// A pass's results, compared bit for bit with its first run at the same SM
// count (the same split), if there was one: the blocks and threads taking
// turns in another order must not change them.
void record_order(const std::string& what, std::map<int64_t, std::vector<float>>& first, int64_t sm_count,
                  const Guarded& result, Tally& tally) {
  const auto [at, inserted] =
      first.emplace(sm_count, std::vector<float>(result.storage.begin() + kGuard, result.storage.end() - kGuard));
  if (inserted) return;
  int64_t differing = 0;
  for (size_t i = 0; i < at->second.size(); ++i)
    differing += std::memcmp(&result.storage[kGuard + i], &at->second[i], sizeof(float)) != 0 ? 1 : 0;
  tally.record_differences(what + ", against the run in grid order", differing);
}

// The channel moments the kernel wrote (kernels/channel_moments.h) against
// the output it wrote, [batch, channels, plane], in double: each channel's
// count exactly, its mean and sum of squared deviations to within 1e-12 of
// their scale. The buffer starts as NaN, so a record the kernel should have
// written but did not shows (the launcher clears nothing: every record is
// written by the block that holds its columns).
int64_t wrong_moment_channels(const std::vector<MomentRecord>& records, int64_t per_channel, const Guarded& output,
                              int64_t batch, int64_t channels, int64_t plane) {
  int64_t wrong = 0;
  for (int64_t c = 0; c < channels; ++c) {
    const ChannelMoments got = combine_records(records.data() + c * per_channel, per_channel);
    double sum = 0, largest = 0;
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t i = 0; i < plane; ++i) {
        const double v = output.storage[kGuard + static_cast<size_t>((b * channels + c) * plane + i)];
        sum += v;
        largest = std::max(largest, std::abs(v));
      }
    if (!std::isfinite(sum)) {  // an infinite operand: the moments must not look finite either
      wrong += std::isfinite(got.mean) && std::isfinite(got.m2) ? 1 : 0;
      continue;
    }
    const double count = static_cast<double>(batch * plane), mean = sum / count;
    double m2 = 0;
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t i = 0; i < plane; ++i) {
        const double d = output.storage[kGuard + static_cast<size_t>((b * channels + c) * plane + i)] - mean;
        m2 += d * d;
      }
    const bool right = got.count == count && std::abs(got.mean - mean) <= 1e-12 * largest + 1e-300 &&
                       std::abs(got.m2 - m2) <= 1e-12 * (count * largest * largest) + 1e-300;
    wrong += right ? 0 : 1;
  }
  return wrong;
}

// The records of a pass, compared bit for bit with their first run at the
// same SM count, as record_order does for the output.
void record_moments_order(const std::string& what, std::map<int64_t, std::vector<MomentRecord>>& first,
                          int64_t sm_count, const std::vector<MomentRecord>& records, Tally& tally) {
  const auto [at, inserted] = first.emplace(sm_count, records);
  if (inserted) return;
  tally.record_differences(what + " moments, against the run in grid order",
                           std::memcmp(records.data(), at->second.data(), records.size() * sizeof(MomentRecord)) != 0);
}

template <class Cfg, class Math>
void check_configuration(const char* name, Case& c, const std::vector<Plan>& plans, Tally& tally) {
  const Conv2dGeometry& g = c.g;
  std::map<int64_t, std::vector<float>> first_y, first_dx, first_dw;
  std::map<int64_t, std::vector<MomentRecord>> first_y_moments, first_dx_moments;
  const int64_t y_records = moment_records(ConvPass::Forward, g), dx_records = moment_records(ConvPass::BackwardData, g);
  for (const Plan run : plans) {
    const std::string what = c.shape + ", tile " + name + ", " + Accuracy<Math>::name + ", " +
                             std::to_string(run.sm_count) + " SMs" + (run.reverse ? ", threads in reverse, blocks shuffled" : "");
    Guarded y(c.y.value.size());
    std::vector<MomentRecord> y_moments(static_cast<size_t>(g.out_channels * y_records), {kNaN, kNaN, kNaN});
    ForwardOp::Params forward = forward_params(g, c.x.data(), c.w.data(), c.bias.data(), y.data(), y_moments.data());
    run_on_host<ForwardOp, Cfg, Math>(forward, 1, forward.N, forward.K, run.sm_count, run.reverse);
    record<Math>("forward, " + what, c, y, c.y, tally);
    record_order("forward, " + what, first_y, run.sm_count, y, tally);
    tally.record_differences("forward moments, " + what + ": channels",
                             wrong_moment_channels(y_moments, y_records, y, g.batch, g.out_channels,
                                                   g.out_height() * g.out_width()));
    record_moments_order("forward, " + what, first_y_moments, run.sm_count, y_moments, tally);

    Guarded dx(c.dx.value.size());
    std::vector<MomentRecord> dx_moments(static_cast<size_t>(g.in_channels * dx_records), {kNaN, kNaN, kNaN});
    backward_data_launches(g, c.dy.data(), c.w.data(), dx.data(), dx_moments.data(),
                           [&](BackwardDataOp::Params& p, int phases, int max_n, int max_k) {
                             run_on_host<BackwardDataOp, Cfg, Math>(p, phases, max_n, max_k, run.sm_count,
                                                                    run.reverse);
                           });
    record<Math>("backward data, " + what, c, dx, c.dx, tally);
    record_order("backward data, " + what, first_dx, run.sm_count, dx, tally);
    tally.record_differences("backward data moments, " + what + ": channels",
                             wrong_moment_channels(dx_moments, dx_records, dx, g.batch, g.in_channels,
                                                   g.in_height * g.in_width));
    record_moments_order("backward data, " + what, first_dx_moments, run.sm_count, dx_moments, tally);

    Guarded dw(c.dw.value.size());
    BackwardWeightOp::Params weight = backward_weight_params(g, c.x.data(), c.dy.data(), dw.data());
    run_on_host<BackwardWeightOp, Cfg, Math>(weight, 1, weight.N, weight.K, run.sm_count, run.reverse);
    record<Math>("backward weight, " + what, c, dw, c.dw, tally);
    record_order("backward weight, " + what, first_dw, run.sm_count, dw, tally);
  }
}

// Every tile configuration with Math, in the K depth the launcher gives it
// (the 8-row tile has no tensor-core form).
template <class Math>
void check_tiles(Case& c, const std::vector<Plan>& plans, Tally& tally) {
  check_configuration<TileFor<TileLarge, Math>, Math>("128x128", c, plans, tally);
  check_configuration<TileFor<TileMedium, Math>, Math>("64x128", c, plans, tally);
  check_configuration<TileFor<TileSmall, Math>, Math>("32x128", c, plans, tally);
  if constexpr (Math::kPasses == 0) check_configuration<TileTiny, Math>("8x256", c, plans, tally);
  check_configuration<TileFor<TileNarrow, Math>, Math>("128x32", c, plans, tally);
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
  // No split, some, many; and the threads of each step in reverse order, the blocks shuffled.
  const std::vector<Plan> all_plans = {{1, false}, {132, false}, {132, true}, {100000, false}};
  const std::vector<Plan> two_plans = {{1, false}, {132, true}};
  const std::vector<Plan> split_plan = {{132, false}};
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
    const int before = tally.failed;
    Case random_case = make_case(g, shape, false, random);
    check_tiles<SimtFp32>(random_case, all_plans, tally);
    check_tiles<Tf32>(random_case, split_plan, tally);
    check_tiles<Tf32x3>(random_case, split_plan, tally);
    check_tiles<Bf16>(random_case, split_plan, tally);
    Case integer_case = make_case(g, shape, true, random);
    check_tiles<SimtFp32>(integer_case, split_plan, tally);
    check_tiles<Tf32>(integer_case, two_plans, tally);
    check_tiles<Tf32x3>(integer_case, two_plans, tally);
    check_tiles<Bf16>(integer_case, two_plans, tally);
    // An infinite input pixel: every output and weight gradient it reaches
    // must be that infinity (times a weight's sign) in FP32 and TF32, and not
    // finite in 3xTF32.
    if (g.in_channels == 40) {
      Case infinite = make_case(g, shape, false, random);
      infinite.shape += ", one input pixel infinite";
      infinite.x.data()[0] = std::numeric_limits<float>::infinity();
      infinite.y = forward_reference(g, infinite.x.data(), infinite.w.data(), infinite.bias.data());
      backward_reference(g, infinite.x.data(), infinite.w.data(), infinite.dy.data(), infinite.dx, infinite.dw);
      check_tiles<SimtFp32>(infinite, split_plan, tally);
      check_tiles<Tf32>(infinite, split_plan, tally);
      check_tiles<Tf32x3>(infinite, split_plan, tally);
      check_tiles<Bf16>(infinite, split_plan, tally);
    }
    std::printf("%s %s\n", tally.failed == before ? "ok    " : "FAILED", shape);
  }
  std::printf("%d host runs of the kernel (3 passes x tiles x maths x launch plans per shape), %d failed\n",
              tally.runs, tally.failed);
  std::printf("TF32 and bf16 on random operands missed the FP32 bound in %d of %d results\n",
              rounded_runs_missing_fp32, rounded_runs);
  std::printf("bf16 missed TF32's bound in %d results\n", bf16_runs_missing_tf32);
  const int bf16_rounding_errors = check_bf16_rounding(random);
  std::printf("bf16 rounding: %d disagreements with the reference rounding\n", bf16_rounding_errors);
  bool ok = tally.failed == 0 && bf16_rounding_errors == 0;
  if (split_blocks > 0) {
    std::printf("FAILED: %lld block(s) whose threads disagreed in setup()\n", static_cast<long long>(split_blocks));
    ok = false;
  }
  if (mma_faults > 0) {
    std::printf("FAILED: %lld tensor-core instruction(s) with lanes out of step or operands not rounded to TF32\n",
                static_cast<long long>(mma_faults));
    ok = false;
  }
  if (counters_left_set > 0) {
    std::printf("FAILED: %lld split-K arrival counter(s) not back at zero after their launch\n",
                static_cast<long long>(counters_left_set));
    ok = false;
  }
  if (unwaited_copies > 0) {
    std::printf("FAILED: %lld asynchronous copies still in flight when their block ended\n",
                static_cast<long long>(unwaited_copies));
    ok = false;
  }
  if (rounded_runs_missing_fp32 != rounded_runs) {
    std::printf("FAILED: TF32 or bf16 met the FP32 bound in %d result(s): are its operands rounded?\n",
                rounded_runs - rounded_runs_missing_fp32);
    ok = false;
  }
  if (bf16_runs_missing_tf32 == 0) {
    std::printf("FAILED: bf16 met TF32's bound everywhere: are its operands rounded to bf16?\n");
    ok = false;
  }
  return ok ? 0 : 1;
}
