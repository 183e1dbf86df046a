// Handwritten CUDA convolution: the three passes as implicit GEMMs.
//
// Math. With the weight viewed as W[Cout, Cin*kh*kw] (PyTorch layout, no copy)
// and col = im2col(x) never materialised:
//
//   forward          Y[co, (b,oh,ow)]   = sum_(ci,r,s)   W[co, (ci,r,s)] * X[b, ci, oh*st-p+r, ow*st-p+s]
//                    M = Cout,  N = batch*OH*OW,  K = Cin*kh*kw
//   backward data    dX[ci, (b,ih,iw)]  = sum_(co,r,s)   W[co, (ci,r,s)] * dY[b, co, (ih+p-r)/st, (iw+p-s)/st]
//                    (only taps where both divisions are exact and in range)
//   backward weight  dW[co, (ci,r,s)]   = sum_(b,oh,ow)  dY[b, co, oh, ow] * X[b, ci, oh*st-p+r, ow*st-p+s]
//                    M = Cout,  N = Cin*kh*kw,  K = batch*OH*OW
//
// Backward data is a gather (one output element per input pixel, no atomics),
// split by stride phase: the input pixels with ih % st == ph, iw % st == pw
// all use the same taps r = r0 + st*t (r0 = (ph+p) % st), and then
// oh = ih/st + (ph+p-r0)/st - t. Each phase is a dense GEMM with
// M = Cin, N = batch*ceil((IH-ph)/st)*ceil((IW-pw)/st), K = Cout*Tr*Ts, so a
// 4x4 stride-2 kernel does 4 taps per pixel instead of 16 mostly-zero ones.
// The phases are independent GEMMs of one launch (blockIdx.z).
//
// One kernel template runs all three: an operation (ForwardOp, ...) says how
// a row m of A, a column n of B and a reduction index k map to addresses.
// Every A and B element is `base(m or n) + offset(k)`; B also has a row/column
// pair `(row(n) + row(k), col(n) + col(k))` that must fall inside the
// gathered image, which is how padding and invalid taps read as zeros. The
// per-column part is computed once per thread; the per-k part once per
// K-tile by BK threads, into a small table in shared memory.
//
// Tiling. A block computes a BM x BN tile of C with 256 threads, each holding a
// TM x TN micro-tile in registers (128x128/8x8 for M > 64, 64x128/4x8,
// 32x128/4x4, 8x256/2x4 for the thin layers: M = Cout or Cin is as small as
// 1 or 3 in pix2pix; 128x32/4x4 when N <= 32, the U-Net bottleneck). K advances in tiles of BK = 8: A (BK x BM) and B
// (BK x BN) are staged k-major in shared memory, double buffered with one
// __syncthreads per tile: tile t+1 is fetched from global memory into
// registers before the FMAs on tile t and stored to the other buffer after
// them, so the load latency hides behind the math. Rows are padded (see
// OperandTiles) so that a warp's shared-memory accesses hit distinct banks
// while the compute loop still reads float4 fragments.
// A thread's micro-tile columns come in groups of 4 spread BN/2 apart, so a
// warp's float4 reads of a B row are contiguous (conflict-free).
// That is the FP32 form, the exact reference. The tensor-core forms
// (--precision tf32, 3xtf32, bf16; see "TF32 tensor-core math" below) keep
// the tiling and the gather but take K 16 deep per tile, copy the operands
// global -> shared with cp.async in a 3-stage pipeline, and multiply warp
// fragments with mma.sync (m16n8k8 TF32, m16n8k16 bf16); 3xTF32 splits each
// operand into a TF32 high part and a TF32 remainder and adds three
// products. The 8x256 tile stays FP32.
//
// Split-K. Deep, narrow layers (the U-Net bottleneck: M = 512, N = batch*1..64,
// K = 8192; weight gradients: K = batch*OH*OW up to 2^20) give few output
// tiles. The K range is then split over blockIdx.z until the blocks fill one
// wave (2 per SM); each split writes its partial tile to a scratch buffer and
// counts itself in at its tile's counter, and the block that arrives last
// sums the splits in split order, so results are identical run to run
// whichever block that is (the counter is the only atomic, and it adds no
// floats), in one launch. The bias gradient is a two-pass fixed-order sum in
// double.
//
// Moments. Given somewhere to put them, the forward and backward-data
// passes also write their output's channel moments (kernels/channel_moments.h)
// for the batch norm that reads the output next: once a block's tile is in
// memory (after split-K's sum, by the block that did it), a barrier, and
// each thread reads back one row's run of 32 columns of it, twice (through
// L1: the first read of a line fetches it from L2, where the stores just
// went), and writes its record. The batch norm then needs
// neither of its two passes over the output that find the statistics.
//
// Index math is 32-bit: the launchers check that every (padded) tensor has
// at most 2^30 elements, which bounds every intermediate offset below 2^31.
// Divisions by runtime extents use multiply-high (FastDivmod).
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <type_traits>

#include <pixgrad/core/error.h>
#include <pixgrad/kernels/channel_moments.h>
#include <pixgrad/kernels/cuda/bias_gradient.h>
#include <pixgrad/kernels/cuda/conv2d.h>
#include <pixgrad/kernels/cuda/runtime.cuh>
#include <pixgrad/kernels/cuda/workspace.h>

namespace pixgrad::kernels::cuda::detail {
namespace {


// ---- integer division by a runtime constant ---------------------------------

// q = n / d for 0 <= n < 2^31, 1 <= d < 2^31, as umulhi(n, m) >> shift with
// L = ceil(log2 d), m = ceil(2^(31+L) / d) < 2^32 and shift = L - 1. With
// m*d = 2^(31+L) + e, 0 <= e < d: n*m / 2^(31+L) = n/d + n*e / (d*2^(31+L)),
// and n*e < 2^31 * 2^L makes the error below 1/d, too small to cross an
// integer. d = 1 (L = 0) is a special case.
struct FastDivmod {
  int divisor = 1;
  unsigned int multiplier = 0;
  unsigned int shift = 0;

  FastDivmod() = default;
  explicit FastDivmod(int d) : divisor(d) {
    if (d <= 1) {
      divisor = 1;
      return;
    }
    unsigned int log2_ceil = 0;
    while ((uint64_t{1} << log2_ceil) < static_cast<uint64_t>(d)) ++log2_ceil;
    const uint64_t numerator = uint64_t{1} << (31 + log2_ceil);
    multiplier = static_cast<unsigned int>((numerator + static_cast<uint64_t>(d) - 1) / static_cast<uint64_t>(d));
    shift = log2_ceil - 1;
  }

  __host__ __device__ __forceinline__ int div(int n) const {
    if (divisor == 1) return n;
#ifdef __CUDA_ARCH__
    const unsigned int high = __umulhi(static_cast<unsigned int>(n), multiplier);
#else
    const unsigned int high = static_cast<unsigned int>((uint64_t{static_cast<unsigned int>(n)} * multiplier) >> 32);
#endif
    return static_cast<int>(high >> shift);
  }
  __host__ __device__ __forceinline__ void divmod(int n, int& quotient, int& remainder) const {
    quotient = div(n);
    remainder = n - quotient * divisor;
  }
};

// `#pragma unroll` for the device pass only: the host compiler also sees the
// __host__ __device__ functions below and would warn about the pragma.
#ifdef __CUDA_ARCH__
#define PIXGRAD_UNROLL _Pragma("unroll")
#define PIXGRAD_NO_UNROLL _Pragma("unroll 1")
#else
#define PIXGRAD_UNROLL
#define PIXGRAD_NO_UNROLL
#endif

// Read-only data path (the operands never alias an output); a plain load on the host.
__host__ __device__ __forceinline__ float load_readonly(const float* address) {
#ifdef __CUDA_ARCH__
  return __ldg(address);
#else
  return *address;
#endif
}

// A value this block stored before a barrier, cached in L1 (ld.global.ca):
// not the read-only path, which the compiler would otherwise pick for a
// function that only reads floats, and which is for data that no thread
// writes while the kernel runs.
__host__ __device__ __forceinline__ float load_block_written(const float* address) {
#ifdef __CUDA_ARCH__
  return __ldca(address);
#else
  return *address;
#endif
}

// ---- TF32 tensor-core math ---------------------------------------------------------
//
// mma.sync.m16n8k8 with .tf32 operands multiplies 19-bit floats (fp32's
// exponent, 10 mantissa bits) exactly and accumulates in fp32. Operands are
// rounded to nearest, ties away from zero (cvt.rna), as PyTorch's TF32 mode
// does. 3xTF32 splits each operand into big = tf32(x) and small =
// tf32(x - big) and adds small*big + big*small before big*big: the dropped
// small*small term is about 2^-22 of the product, near fp32's own rounding.
// In 3xTF32 an infinite operand (or one that rounds to infinity) gives
// NaN wherever it enters, since x - big is inf - inf; FP32 gives inf there.

[[maybe_unused]] __host__ __device__ __forceinline__ uint32_t float_bits(float x) {
#ifdef __CUDA_ARCH__
  return __float_as_uint(x);
#else
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  return bits;
#endif
}

__host__ __device__ __forceinline__ float bits_float(uint32_t bits) {
#ifdef __CUDA_ARCH__
  return __uint_as_float(bits);
#else
  float x;
  std::memcpy(&x, &bits, sizeof x);
  return x;
#endif
}

// x rounded to TF32, in a 32-bit float's layout with the 13 low bits zero.
__host__ __device__ __forceinline__ uint32_t to_tf32(float x) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  uint32_t bits;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(bits) : "f"(x));
  return bits & 0xffffe000u;  // the ISA leaves the low bits to the implementation; the split below needs them zero
#else
  uint32_t bits = float_bits(x);
  if ((bits & 0x7f800000u) == 0x7f800000u) return (bits & 0x007fffffu) != 0 ? 0x7fffe000u : bits;  // NaN, inf
  bits += 0x1000u;  // half a TF32 unit on the magnitude: round to nearest, ties away from zero
  return bits & 0xffffe000u;
#endif
}

// x rounded to bf16 (8-bit significand; to nearest, ties to even, as
// PyTorch converts), in a 32-bit float's layout with the 16 low bits zero.
// The same integer code on both sides, so the host model checks it as run.
__host__ __device__ __forceinline__ uint32_t to_bf16(float x) {
  const uint32_t bits = float_bits(x);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return (bits | 0x00400000u) & 0xffff0000u;  // NaN stays a (quiet) NaN
  return (bits + 0x7fffu + ((bits >> 16) & 1u)) & 0xffff0000u;  // a carry into the exponent rounds up, to inf at most
}

// Two bf16 values (floats with zero low halves) in one register, `low` in
// the low half, as mma takes consecutive elements.
__host__ __device__ __forceinline__ uint32_t pack_bf16(float low, float high) {
  return (float_bits(high) & 0xffff0000u) | (float_bits(low) >> 16);
}

// The block's tile product: fp32 FMAs on the CUDA cores (the exact
// reference), TF32 tensor cores in one pass or three, or bf16 tensor cores.
// kPad is the shared rows' padding that spreads a warp's accesses over the
// 32 banks (see OperandTiles); kInstructionK the tensor-core instruction's
// depth.
struct SimtFp32 {
  static constexpr int kPasses = 0, kPad = 4;
};
template <int Passes>
struct TensorCoreTf32 {
  static_assert(Passes == 1 || Passes == 3, "TF32 runs in one pass or three");
  static constexpr int kPasses = Passes, kInstructionK = 8, kPad = 8;
  static constexpr bool kBf16 = false;
};
using Tf32 = TensorCoreTf32<1>;
using Tf32x3 = TensorCoreTf32<3>;
// mma.m16n8k16 with .bf16 operands: twice TF32's rate, about 8x its
// operand rounding error.
struct Bf16 {
  static constexpr int kPasses = 1, kInstructionK = 16, kPad = 4;
  static constexpr bool kBf16 = true;
};

// d += a * b for one 16x8 tile of a warp (8 deep for TF32, 16 for bf16), each
// operand in its lane's fragment registers as the PTX ISA lays them out
// (a0..a3, b0..b1, d0..d3; for bf16 each a and b register holds two elements).
// The host model (tests/cuda_host) replaces this with a recording stand-in
// and plays the warp's instruction from the ISA's fragment tables.
template <class Math>
struct WarpMma {
  __host__ __device__ __forceinline__ void operator()(float* d, const uint32_t* a, const uint32_t* b) const {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    if constexpr (Math::kBf16)
      asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
          "{%0, %1, %2, %3};"
          : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
          : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
    else
      asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
          "{%0, %1, %2, %3};"
          : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
          : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#elif defined(__CUDA_ARCH__)
    __trap();  // the launcher refuses TF32 below compute capability 8.0
#else
    (void)d, (void)a, (void)b;
    std::abort();  // only device code issues the instruction
#endif
  }
};

// The tensor-core forms' global -> shared copy, cp.async (compute capability
// 8.0): 4 bytes, or four zero bytes when !valid (a source size of 0 reads
// nothing). A thread commits its copies as one group per tile and waits until
// at most `Pending` of its groups are in flight; other threads' copies are
// visible after the barrier that follows their wait. The host model replaces
// this with a stand-in that holds the copies back until the wait.
struct AsyncCopy {
  __host__ __device__ __forceinline__ void operator()(float* destination, const float* source, bool valid) const {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    const unsigned int address = static_cast<unsigned int>(__cvta_generic_to_shared(destination));
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(address), "l"(source), "r"(valid ? 4 : 0)
                 : "memory");
#elif defined(__CUDA_ARCH__)
    (void)destination, (void)source, (void)valid;
    __trap();  // the launcher refuses tensor cores below compute capability 8.0
#else
    (void)destination, (void)source, (void)valid;
    std::abort();  // only device code copies this way
#endif
  }
  __host__ __device__ __forceinline__ void commit() const {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
  }
  template <int Pending>
  __host__ __device__ __forceinline__ void wait() const {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.wait_group %0;\n" ::"n"(Pending) : "memory");
#endif
  }
};

// Split-K's hand-over between the blocks of one output tile (see
// splitk_program): `publish` orders this thread's partial-tile stores before
// its block's ticket for every block of the grid, `take_ticket` counts an
// arrival (returning the count before it, then fencing so that the stores of
// the blocks counted before are visible here), `load` reads another block's
// partial sums from L2 (never from a possibly stale L1 line) and `reset`
// leaves the tile's counter at zero for the next launch.
struct DeviceArrivals {
  __host__ __device__ __forceinline__ void publish() const {
#ifdef __CUDA_ARCH__
    __threadfence();
#endif
  }
  __host__ __device__ __forceinline__ unsigned int take_ticket(unsigned int* counter) const {
#ifdef __CUDA_ARCH__
    const unsigned int ticket = atomicAdd(counter, 1u);
    __threadfence();
    return ticket;
#else
    (void)counter;
    std::abort();  // only device code counts this way
#endif
  }
  __host__ __device__ __forceinline__ float load(const float* source) const {
#ifdef __CUDA_ARCH__
    return __ldcg(source);
#else
    return *source;
#endif
  }
  __host__ __device__ __forceinline__ void reset(unsigned int* counter) const { *counter = 0; }
};

// ---- tiles -----------------------------------------------------------------------

template <int BM_, int BN_, int TM_, int TN_, int BK_ = 8>
struct Tile {
  static constexpr int BM = BM_, BN = BN_, BK = BK_, TM = TM_, TN = TN_;
  static constexpr int kThreads = (BM / TM) * (BN / TN);
  static_assert(kThreads == 256, "the loaders assume 256 threads");
  static_assert(BM % TM == 0 && BN % TN == 0 && (TM == 2 || TM % 4 == 0) && (TN == 2 || TN % 4 == 0),
                "micro-tiles are read as float2/float4 fragments");
};

using TileLarge = Tile<128, 128, 8, 8>;  // M > 64
using TileMedium = Tile<64, 128, 4, 8>;  // 32 < M <= 64
using TileSmall = Tile<32, 128, 4, 4>;   // 8 < M <= 32
using TileTiny = Tile<8, 256, 2, 4>;     // M <= 8 (Cout = 1 or 3, Cin = 3 or 6)
static_assert(TileTiny::BM == kFp32OnlyRows, "the FP32-only tile takes exactly the layers reported as fp32");
using TileNarrow = Tile<128, 32, 4, 4>;  // M > 32, N <= 32 (the U-Net bottleneck at small batch)

// The tensor-core forms take K 16 deep per tile (two instruction steps per
// barrier), since an m16n8k8 step is far quicker than the FMAs it replaces.
template <class Cfg, class Math>
using TileFor = std::conditional_t<Math::kPasses == 0, Cfg, Tile<Cfg::BM, Cfg::BN, Cfg::TM, Cfg::TN, 16>>;

// ---- the three operations ----------------------------------------------------

// A[m, k] = a[m * m_stride + offset_a(k)] (zero for m >= M or k outside the
// split); B[k, n] = b[base(n) + offset_b(k)] when 0 <= row(n) + row(k) <
// b_height and 0 <= col(n) + col(k) < b_width, else zero.
struct GemmCommon {
  const float* a;
  const float* b;
  float* partial;  // split-K scratch: [phase][split][M][n_capacity]
  unsigned int* tile_arrivals;  // split-K: splits arrived per output tile, 0 between launches
  int M;
  int m_stride;
  int b_height, b_width;
  int splits;       // K splits per phase (blockIdx.z = phase * splits + split)
  int k_per_split;  // a multiple of BK
  int n_capacity;   // the largest N over the phases of the launch
  // The output's channel moments (kernels/channel_moments.h), or nullptr:
  // row m's record of columns [32j, 32j + 32) of phase f at
  // moments[m * moment_stride + Op::first_record(p, f) + j], the phases'
  // records one after another, each phase's as many as its columns need.
  MomentRecord* moments;
  int moment_stride;
};

// Row of an invalid column (n >= N): far enough below zero that adding any
// per-k row offset (at most 2^30 in magnitude) still fails the bounds test.
constexpr int kInvalidRow = -(1 << 30);

// Per-k entries of the decode table: {offset_a, offset_b, row, col}.
// Per-n entries: {base, row, col}.

struct ForwardOp {
  static constexpr bool kBKFastest = false;  // B columns (output pixels) are contiguous
  struct Params {
    GemmCommon common;  // a = weight [Cout, K], b = input, M = Cout, m_stride = K
    float* output;
    const float* bias;
    int K, N;
    FastDivmod pixels, out_w;    // OH*OW, OW
    FastDivmod taps, kernel_w;   // kh*kw, kw
    int stride, padding;
    int in_image, in_plane, in_w;  // Cin*H*W, H*W, W
  };
  __host__ __device__ static int k_size(const Params& p, int) { return p.K; }
  __host__ __device__ static int n_size(const Params& p, int) { return p.N; }
  // k = (ci, r, s)
  __host__ __device__ static int4 decode_k(const Params& p, int, int k) {
    int ci, tap, r, s;
    p.taps.divmod(k, ci, tap);
    p.kernel_w.divmod(tap, r, s);
    return make_int4(k, ci * p.in_plane + r * p.in_w + s, r, s);
  }
  // n = (b, oh, ow): the window's top-left corner in the (unpadded) input
  __host__ __device__ static int3 n_info(const Params& p, int, int n) {
    if (n >= p.N) return make_int3(0, kInvalidRow, 0);
    int b, pixel, oh, ow;
    p.pixels.divmod(n, b, pixel);
    p.out_w.divmod(pixel, oh, ow);
    const int row = oh * p.stride - p.padding, col = ow * p.stride - p.padding;
    return make_int3(b * p.in_image + row * p.in_w + col, row, col);
  }
  static constexpr bool kWritesMoments = true;
  __host__ __device__ static int first_record(const Params&, int) { return 0; }
  __host__ __device__ static float* output_at(const Params& p, int, int m, int n) {
    int b, pixel;
    p.pixels.divmod(n, b, pixel);
    return p.output + (b * p.common.M + m) * p.pixels.divisor + pixel;
  }
  __host__ __device__ static void store(const Params& p, int phase, int m, int n, float value) {
    if (p.bias) value += load_readonly(p.bias + m);
    *output_at(p, phase, m, n) = value;
  }
};

// Up to 16 stride phases per launch (stride <= 4); larger strides take
// several launches.
constexpr int kMaxPhases = 16;

struct DataPhase {
  int K, N;                 // Cout*Tr*Ts, batch*rows*cols
  FastDivmod pixels, cols;  // rows*cols, cols
  FastDivmod taps, taps_w;  // Tr*Ts, Ts
  int row_offset, col_offset;  // (ph+p-r0)/st, (pw+p-s0)/st
  int first_r, first_s;        // r0, s0
  int in_row, in_col;          // ph, pw
  int first_record;            // its first moment record among a row's
};

struct BackwardDataOp {
  static constexpr bool kBKFastest = false;  // B columns (input pixels of a phase) are contiguous in dY
  struct Params {
    GemmCommon common;  // a = weight, b = grad_output, M = Cin, m_stride = kh*kw
    float* grad_input;
    int stride;
    int kernel_w, weight_out_stride;        // kw, Cin*kh*kw
    int out_image, out_plane, out_w;        // Cout*OH*OW, OH*OW, OW
    int in_h, in_w;                         // IH, IW
    DataPhase phases[kMaxPhases];
  };
  __host__ __device__ static int k_size(const Params& p, int phase) { return p.phases[phase].K; }
  __host__ __device__ static int n_size(const Params& p, int phase) { return p.phases[phase].N; }
  // k = (co, t, u): weight tap (r0 + st*t, s0 + st*u), dY at (row(n) - t, col(n) - u)
  __host__ __device__ static int4 decode_k(const Params& p, int phase, int k) {
    const DataPhase& f = p.phases[phase];
    int co, tap, t, u;
    f.taps.divmod(k, co, tap);
    f.taps_w.divmod(tap, t, u);
    const int r = f.first_r + p.stride * t, s = f.first_s + p.stride * u;
    return make_int4(co * p.weight_out_stride + r * p.kernel_w + s, co * p.out_plane - t * p.out_w - u, -t, -u);
  }
  // n = (b, y, x): input pixel (ph + st*y, pw + st*x); dY row/col for t = u = 0
  __host__ __device__ static int3 n_info(const Params& p, int phase, int n) {
    const DataPhase& f = p.phases[phase];
    if (n >= f.N) return make_int3(0, kInvalidRow, 0);
    int b, pixel, y, x;
    f.pixels.divmod(n, b, pixel);
    f.cols.divmod(pixel, y, x);
    const int row = y + f.row_offset, col = x + f.col_offset;
    return make_int3(b * p.out_image + row * p.out_w + col, row, col);
  }
  static constexpr bool kWritesMoments = true;
  __host__ __device__ static int first_record(const Params& p, int phase) { return p.phases[phase].first_record; }
  __host__ __device__ static float* output_at(const Params& p, int phase, int m, int n) {
    const DataPhase& f = p.phases[phase];
    int b, pixel, y, x;
    f.pixels.divmod(n, b, pixel);
    f.cols.divmod(pixel, y, x);
    const int ih = f.in_row + p.stride * y, iw = f.in_col + p.stride * x;
    return p.grad_input + ((b * p.common.M + m) * p.in_h + ih) * p.in_w + iw;
  }
  __host__ __device__ static void store(const Params& p, int phase, int m, int n, float value) {
    *output_at(p, phase, m, n) = value;
  }
};

struct BackwardWeightOp {
  static constexpr bool kBKFastest = true;  // both operands are contiguous along the pixels (K)
  static constexpr bool kWritesMoments = false;  // a weight gradient feeds no normalisation
  struct Params {
    GemmCommon common;  // a = grad_output, b = input, M = Cout, m_stride = OH*OW
    float* grad_weight;
    int K, N;                     // batch*OH*OW, Cin*kh*kw
    FastDivmod pixels, out_w;     // OH*OW, OW
    FastDivmod taps, kernel_w;    // kh*kw, kw
    int stride, padding;
    int out_image;                // Cout*OH*OW
    int in_image, in_plane, in_w; // Cin*H*W, H*W, W
  };
  __host__ __device__ static int k_size(const Params& p, int) { return p.K; }
  __host__ __device__ static int n_size(const Params& p, int) { return p.N; }
  // k = (b, oh, ow): the window's top-left corner in the input
  __host__ __device__ static int4 decode_k(const Params& p, int, int k) {
    int b, pixel, oh, ow;
    p.pixels.divmod(k, b, pixel);
    p.out_w.divmod(pixel, oh, ow);
    const int row = oh * p.stride - p.padding, col = ow * p.stride - p.padding;
    return make_int4(b * p.out_image + pixel, b * p.in_image + row * p.in_w + col, row, col);
  }
  // n = (ci, r, s)
  __host__ __device__ static int3 n_info(const Params& p, int, int n) {
    if (n >= p.N) return make_int3(0, kInvalidRow, 0);
    int ci, tap, r, s;
    p.taps.divmod(n, ci, tap);
    p.kernel_w.divmod(tap, r, s);
    return make_int3(ci * p.in_plane + r * p.in_w + s, r, s);
  }
  __host__ __device__ static void store(const Params& p, int, int m, int n, float value) {
    p.grad_weight[m * p.N + n] = value;
  }
};

// ---- the kernel ------------------------------------------------------------------
//
// The kernel is written as the per-thread steps between its barriers
// (GemmThread's methods), all __host__ __device__: the kernel runs them in
// order with __syncthreads between, and a host emulation can run them for 256
// threads in turn to check the indexing without a GPU.

// A (BK x BM) and B (BK x BN) tiles, k-major, in `Buffers` buffers. Rows are
// padded to keep them 16-byte aligned and to spread a warp's accesses over
// the 32 banks: by 4 floats for SIMT, whose transposing stores (k fastest
// across a warp) then hit distinct banks, and for bf16, whose fragment reads
// (k = 2 * (lane % 4), row = lane / 4) do too; by 8 for TF32, whose fragment
// reads (k = lane % 4) then do, at the price of copies and in-place rounding
// that meet four to a bank (docs/cuda-conv.md weighs the two).
template <class Cfg, int Pad, int Buffers>
struct OperandTiles {
  alignas(16) float a[Buffers][Cfg::BK][Cfg::BM + Pad];
  alignas(16) float b[Buffers][Cfg::BK][Cfg::BN + Pad];
};
template <class Tiles, bool Present>
struct LowTiles {
  Tiles low;
};
template <class Tiles>
struct LowTiles<Tiles, false> {};  // an empty base: no space taken

// SIMT double-buffers its tiles through registers; the tensor-core forms
// copy them straight into a ring of kStages buffers (cp.async), and round
// each element to TF32 in place once it has landed, once per element rather
// than once per warp that reads it; 3xTF32 keeps what that rounding left
// out, rounded, in two `low` buffers.
template <class Math>
constexpr int kStages = Math::kPasses == 0 ? 2 : 3;

template <class Cfg, class Math, class Tiles = OperandTiles<Cfg, Math::kPad, kStages<Math>>>
struct GemmShared : Tiles, LowTiles<OperandTiles<Cfg, Math::kPad, 2>, Math::kPasses == 3> {
  int4 k_table[2][Cfg::BK];  // decoded k of the next tiles to fetch
  unsigned int ticket;       // split-K: how many splits of this tile arrived before this block
};

// Static shared memory stops at 48 KiB; larger blocks (the deep tensor-core
// tiles) take theirs as dynamic shared memory, which the launcher sizes.
constexpr size_t kStaticSharedLimit = 48 * 1024;
template <class Shared>
constexpr bool kDynamicShared = sizeof(Shared) > kStaticSharedLimit;
// The dynamic shared memory a launch asks for (none for a static block).
template <class Shared>
constexpr size_t dynamic_shared_bytes = kDynamicShared<Shared> ? sizeof(Shared) : 0;

template <int V>
__host__ __device__ __forceinline__ void load_fragment(const float* source, float* destination) {
  if constexpr (V == 4) {
    const float4 v = *reinterpret_cast<const float4*>(source);
    destination[0] = v.x;
    destination[1] = v.y;
    destination[2] = v.z;
    destination[3] = v.w;
  } else {
    static_assert(V == 2, "fragments are float2 or float4");
    const float2 v = *reinterpret_cast<const float2*>(source);
    destination[0] = v.x;
    destination[1] = v.y;
  }
}

// With tensor cores the block's 8 warps sit 2 (M) x 4 (N), each computing a
// (BM/2) x (BN/4) tile as 16x8 instruction tiles: as many accumulators per
// thread as the SIMT micro-tile (TM*TN = BM*BN/256).
template <class Cfg>
struct WarpTiles {
  static constexpr int kWarpsM = 2, kWarpsN = 4;
  static constexpr int WM = Cfg::BM / kWarpsM, WN = Cfg::BN / kWarpsN;
  static constexpr int MI = WM / 16, NI = WN / 8;  // instruction tiles per warp
  static_assert(kWarpsM * kWarpsN * 32 == Cfg::kThreads && WM % 16 == 0 && WN % 8 == 0 && Cfg::BK % 16 == 0,
                "warp tiles are whole m16n8k8 tiles");
  static_assert(MI * NI * 4 == Cfg::TM * Cfg::TN, "one accumulator per micro-tile element");
};

// Split-K, in the block that arrived last: thread `tid`'s share of the
// output tile at (m_block, n_block), element e = tid + j * threads with n
// fastest (a warp's loads and stores run along a row), each the sum of the
// splits' partials in split order, whichever block this is. Kept out of
// line and its loop rolled: it runs once per tile, and inlined into the
// kernel it cost the 128x128 tiles register spills.
template <class Op, int BM, int BN, int kThreads, class Arrivals>
__host__ __device__ __noinline__ void reduce_split_tile(const typename Op::Params& p, int tid, int phase, int m_block,
                                                        int n_block, int N, const Arrivals& arrivals) {
  static_assert(BM * BN % kThreads == 0, "the tile's elements divide evenly over the threads");
  const GemmCommon& c = p.common;
  const int64_t split_stride = static_cast<int64_t>(c.M) * c.n_capacity;
PIXGRAD_NO_UNROLL
  for (int j = 0; j < BM * BN / kThreads; ++j) {
    const unsigned int e = static_cast<unsigned int>(tid) + static_cast<unsigned int>(j * kThreads);
    const int m = m_block + static_cast<int>(e / BN), n = n_block + static_cast<int>(e % BN);
    if (m >= c.M || n >= N) continue;
    const float* source = c.partial + (static_cast<int64_t>(phase) * c.splits * c.M + m) * c.n_capacity + n;
    float sum = 0.0f;
    for (int s = 0; s < c.splits; ++s) sum += arrivals.load(source + s * split_stride);
    Op::store(p, phase, m, n, sum);
  }
}

// The moment records of the output tile at (m_block, n_block), once the
// whole tile is in memory (after a barrier): record r is row r / kChunks,
// columns [32 * (r % kChunks), + 32) of the tile, read back from the output.
// The block's own stores are visible to it after the barrier; loaded through
// L1 (load_block_written), a thread's 32 reads of one line, twice, fetch it
// from L2 once (cache-global loads would fetch a sector per read). One
// thread per record, each in a fixed order, so the records do not depend on
// which block wrote the tile. Out of line, like reduce_split_tile: inlined,
// it cost the 3xTF32 128x128 tiles register spills.
template <class Op, int BM, int BN, int kThreads>
__host__ __device__ __noinline__ void write_tile_moments(const typename Op::Params& p, int tid, int phase, int m_block,
                                                         int n_block, int N) {
  static_assert(BN % kMomentValues == 0, "a tile holds whole records");
  constexpr int kChunks = BN / kMomentValues, kRecords = BM * kChunks;
  const GemmCommon& c = p.common;
PIXGRAD_NO_UNROLL
  for (int r = tid; r < kRecords; r += kThreads) {
    const int m = m_block + r / kChunks, first = n_block + (r % kChunks) * kMomentValues;
    if (m >= c.M || first >= N) continue;
    const int count = N - first < kMomentValues ? N - first : kMomentValues;
    const MomentRecord record = moment_record(count, [&](int j) {
      return static_cast<double>(load_block_written(Op::output_at(p, phase, m, first + j)));
    });
    c.moments[static_cast<int64_t>(m) * c.moment_stride + Op::first_record(p, phase) + first / kMomentValues] = record;
  }
}

template <class Op, class Cfg, class Math = SimtFp32>
struct GemmThread {
  using Params = typename Op::Params;
  static constexpr int BM = Cfg::BM, BN = Cfg::BN, BK = Cfg::BK, TM = Cfg::TM, TN = Cfg::TN;
  static constexpr int kThreads = Cfg::kThreads;
  static constexpr int kAElements = BM * BK, kBElements = BK * BN;
  static constexpr int kALoads = (kAElements + kThreads - 1) / kThreads;
  static constexpr int kBLoads = kBElements / kThreads;
  static_assert(kBElements % kThreads == 0 && (kAElements % kThreads == 0 || kAElements < kThreads),
                "tile loads must divide evenly over the threads");
  static constexpr int VA = TM < 4 ? TM : 4, VB = TN < 4 ? TN : 4;  // fragment vector widths
  static constexpr int GA = TM / VA, GB = TN / VB;                  // fragment groups per thread
  static constexpr int kThreadsN = BN / TN;
  static constexpr bool kBKFastest = Op::kBKFastest;
  static_assert(GA * VA == TM && GB * VB == TN && kThreadsN > 0, "SIMT fragments cover the micro-tile");

  int tid, phase, split_index, N, n_block, m_block, k_begin, k_end;
  int a_base[kALoads];
  bool a_valid[kALoads];
  int3 b_info[kBLoads];
  float a_next[kALoads], b_next[kBLoads];
  float acc[TM * TN];  // SIMT: micro-tile row i, column j at i*TN + j; tensor cores: see row_of_element

  // Element j of this thread's share of a tile (unsigned: the divisions by
  // BK and BN fold to shifts and masks).
  __host__ __device__ unsigned int element(int j) const {
    return static_cast<unsigned int>(tid) + static_cast<unsigned int>(j * kThreads);
  }

  // False when the whole block has nothing to do (a phase with fewer columns
  // than the grid covers).
  __host__ __device__ bool setup(const Params& p, int thread, uint3 block) {
    const GemmCommon& c = p.common;
    tid = thread;
    phase = static_cast<int>(block.z) / c.splits;
    split_index = static_cast<int>(block.z) - phase * c.splits;
    N = Op::n_size(p, phase);
    n_block = static_cast<int>(block.x) * BN;
    if (n_block >= N) return false;
    m_block = static_cast<int>(block.y) * BM;
    // A split past this phase's K writes zeros, which the reduction needs.
    k_begin = split_index * c.k_per_split;
    const int K = Op::k_size(p, phase);
    k_end = K < k_begin + c.k_per_split ? K : k_begin + c.k_per_split;
    // A: element e = tid + j*256 of the tile is (k = e % BK, m = e / BK), k fastest.
PIXGRAD_UNROLL
    for (int j = 0; j < kALoads; ++j) {
      const unsigned int e = element(j);
      const int m = m_block + static_cast<int>(e / BK);
      a_valid[j] = e < kAElements && m < c.M;
      a_base[j] = a_valid[j] ? m * c.m_stride : 0;
    }
    // B: element e is (k = e / BN, n = e % BN), n fastest, or (k = e % BK, n = e / BK).
PIXGRAD_UNROLL
    for (int j = 0; j < kBLoads; ++j) {
      const unsigned int e = element(j);
      const int n_local = static_cast<int>(kBKFastest ? e / BK : e % BN);
      b_info[j] = Op::n_info(p, phase, n_block + n_local);
    }
PIXGRAD_UNROLL
    for (int i = 0; i < TM * TN; ++i) acc[i] = 0.0f;
    return true;
  }

  __host__ __device__ void fill_table(const Params& p, GemmShared<Cfg, Math>& s, int slot, int k0) const {
    if (tid < BK) {
      const int k = k0 + tid;
      s.k_table[slot][tid] = k < k_end ? Op::decode_k(p, phase, k) : make_int4(0, 0, 0, 0);
    }
  }

  // Global -> registers: the tile at k0, whose decoded k sit in table slot `slot`.
  __host__ __device__ void load_tile(const Params& p, const GemmShared<Cfg, Math>& s, int slot, int k0) {
    const GemmCommon& c = p.common;
PIXGRAD_UNROLL
    for (int j = 0; j < kALoads; ++j) {
      const int k_local = static_cast<int>(element(j) % BK);
      const int offset = s.k_table[slot][k_local].x;
      a_next[j] = a_valid[j] && k0 + k_local < k_end ? load_readonly(c.a + (a_base[j] + offset)) : 0.0f;
    }
PIXGRAD_UNROLL
    for (int j = 0; j < kBLoads; ++j) {
      const unsigned int e = element(j);
      const int k_local = static_cast<int>(kBKFastest ? e % BK : e / BN);
      const int4 t = s.k_table[slot][k_local];
      const int row = b_info[j].y + t.z, col = b_info[j].z + t.w;
      const bool inside = static_cast<unsigned int>(row) < static_cast<unsigned int>(c.b_height) &&
                          static_cast<unsigned int>(col) < static_cast<unsigned int>(c.b_width);
      b_next[j] = inside && k0 + k_local < k_end ? load_readonly(c.b + (b_info[j].x + t.y)) : 0.0f;
    }
  }

  // Registers -> shared buffer `buffer` (SIMT).
  __host__ __device__ void store_tile(GemmShared<Cfg, Math>& s, int buffer) const {
PIXGRAD_UNROLL
    for (int j = 0; j < kALoads; ++j) {
      const unsigned int e = element(j);
      if (e < kAElements) a_place(s, buffer, e) = a_next[j];
    }
PIXGRAD_UNROLL
    for (int j = 0; j < kBLoads; ++j) b_place(s, buffer, element(j)) = b_next[j];
  }

  // Where element e of this thread's share of a tile sits in buffer `buffer`
  // of `tiles` (the operand tiles, or 3xTF32's low tiles).
  template <class Tiles>
  __host__ __device__ static auto& a_place(Tiles& tiles, int buffer, unsigned int e) {
    return tiles.a[buffer][e % BK][e / BK];
  }
  template <class Tiles>
  __host__ __device__ static auto& b_place(Tiles& tiles, int buffer, unsigned int e) {
    return kBKFastest ? tiles.b[buffer][e % BK][e / BK] : tiles.b[buffer][e / BN][e % BN];
  }

  // Tensor cores: global -> shared stage `stage` directly, the tile at k0
  // whose decoded k sit in table slot `slot`. `copy(destination, source,
  // valid)` is an asynchronous 4-byte copy that writes zero when !valid.
  template <class Copy>
  __host__ __device__ void issue_tile(const Params& p, GemmShared<Cfg, Math>& s, int slot, int stage, int k0,
                                     const Copy& copy) const {
    const GemmCommon& c = p.common;
    // Rows and row bases are worked out here rather than kept from setup():
    // an add or two per copy, against registers these deep tiles lack.
PIXGRAD_UNROLL
    for (int j = 0; j < kALoads; ++j) {
      const unsigned int e = element(j);
      if (e >= kAElements) continue;
      const int k_local = static_cast<int>(e % BK), m = m_block + static_cast<int>(e / BK);
      const bool valid = m < c.M && k0 + k_local < k_end;
      copy(&a_place(s, stage, e), valid ? c.a + (m * c.m_stride + s.k_table[slot][k_local].x) : c.a, valid);
    }
    // With columns fastest, every element of a thread's share has the same
    // column when BN divides the thread count.
    constexpr bool kOneColumn = !kBKFastest && kThreads % BN == 0;
PIXGRAD_UNROLL
    for (int j = 0; j < kBLoads; ++j) {
      const unsigned int e = element(j);
      const int k_local = static_cast<int>(kBKFastest ? e % BK : e / BN);
      const int4 t = s.k_table[slot][k_local];
      const int3 n = b_info[kOneColumn ? 0 : j];
      const int row = n.y + t.z, col = n.z + t.w;
      const bool valid = static_cast<unsigned int>(row) < static_cast<unsigned int>(c.b_height) &&
                         static_cast<unsigned int>(col) < static_cast<unsigned int>(c.b_width) && k0 + k_local < k_end;
      copy(&b_place(s, stage, e), valid ? c.b + (n.x + t.y) : c.b, valid);
    }
  }

  // Tensor cores: the elements of stage `stage` that this thread's own copies
  // filled (complete once it has waited for them), rounded to TF32 in place;
  // for 3xTF32 the rounded remainder goes to the same place of low buffer `low`.
  __host__ __device__ void round_tile(GemmShared<Cfg, Math>& s, int stage, int low) const {
PIXGRAD_UNROLL
    for (int j = 0; j < kALoads; ++j) {
      const unsigned int e = element(j);
      if (e < kAElements)
        round_in_place(s, a_place(s, stage, e), [&](auto& shared) -> float& { return a_place(shared.low, low, e); });
    }
PIXGRAD_UNROLL
    for (int j = 0; j < kBLoads; ++j) {
      const unsigned int e = element(j);
      round_in_place(s, b_place(s, stage, e), [&](auto& shared) -> float& { return b_place(shared.low, low, e); });
    }
  }

  template <class LowPlace>
  __host__ __device__ static void round_in_place(GemmShared<Cfg, Math>& s, float& x, const LowPlace& low_place) {
    if constexpr (Math::kBf16) {
      (void)s, (void)low_place;
      x = bits_float(to_bf16(x));
      return;
    }
    const float big = bits_float(to_tf32(x));
    if constexpr (Math::kPasses == 3) low_place(s) = bits_float(to_tf32(x - big));
    x = big;
  }

  // SIMT micro-tile: rows g*(BM/GA) + ty*VA + v, columns g*(BN/GB) + tx*VB + v.
  __host__ __device__ int row_of(int i) const { return (i / VA) * (BM / GA) + (tid / kThreadsN) * VA + i % VA; }
  __host__ __device__ int col_of(int j) const { return (j / VB) * (BN / GB) + (tid % kThreadsN) * VB + j % VB; }

  // Accumulator e's place in the block tile. Tensor cores: e = (mi*NI + ni)*4
  // + r is element r of instruction tile (mi, ni), at row groupID + 8*(r/2)
  // and column 2*threadID_in_group + r%2 of that tile (the ISA's C layout).
  __host__ __device__ int row_of_element(int e) const {
    if constexpr (Math::kPasses == 0) {
      return row_of(e / TN);
    } else {
      using W = WarpTiles<Cfg>;
      const int warp = tid / 32, lane = tid % 32, tile = e / 4, r = e % 4;
      return (warp / W::kWarpsN) * W::WM + (tile / W::NI) * 16 + lane / 4 + 8 * (r / 2);
    }
  }
  __host__ __device__ int col_of_element(int e) const {
    if constexpr (Math::kPasses == 0) {
      return col_of(e % TN);
    } else {
      using W = WarpTiles<Cfg>;
      const int warp = tid / 32, lane = tid % 32, tile = e / 4, r = e % 4;
      return (warp % W::kWarpsN) * W::WN + (tile % W::NI) * 8 + 2 * (lane % 4) + r % 2;
    }
  }

  // The product of shared buffer `buffer`'s tiles (SIMT), added to the accumulators.
  __host__ __device__ void compute(const GemmShared<Cfg, Math>& s, int buffer) {
    static_assert(Math::kPasses == 0, "the tensor-core forms multiply in compute_with_tensor_cores");
    {
      const int ty = tid / kThreadsN, tx = tid % kThreadsN;
PIXGRAD_UNROLL
      for (int kk = 0; kk < BK; ++kk) {
        float a_frag[TM], b_frag[TN];
PIXGRAD_UNROLL
        for (int g = 0; g < GA; ++g) load_fragment<VA>(&s.a[buffer][kk][g * (BM / GA) + ty * VA], &a_frag[g * VA]);
PIXGRAD_UNROLL
        for (int g = 0; g < GB; ++g) load_fragment<VB>(&s.b[buffer][kk][g * (BN / GB) + tx * VB], &b_frag[g * VB]);
PIXGRAD_UNROLL
        for (int i = 0; i < TM; ++i)
PIXGRAD_UNROLL
          for (int j = 0; j < TN; ++j) acc[i * TN + j] = fmaf(a_frag[i], b_frag[j], acc[i * TN + j]);
      }
    }
  }

  // Fragments, as the PTX ISA lays them out, with g = lane/4, t = lane%4:
  //   m16n8k8 .tf32: a_r is A[g + 8*(r%2)][t + 4*(r/2)], b_h is B[t + 4*h][g];
  //   m16n8k16 .bf16: register r of A holds A[g + 8*(r%2)][2t + 8*(r/2) + q]
  //   and register h of B holds B[2t + 8*h + q][g], q = 0 in the low half.
  // The shared tiles are k-major, so A[m][k] is s.a[k][m] and B[k][n] is
  // s.b[k][n]; stage `stage` holds rounded operands already (and 3xTF32's
  // remainders sit in low buffer `low`). `mma` is the warp's instruction.
  template <class Mma>
  __host__ __device__ void compute_with_tensor_cores(const GemmShared<Cfg, Math>& s, int stage, int low,
                                                     const Mma& mma) {
    using W = WarpTiles<Cfg>;
    constexpr bool kThreePass = Math::kPasses == 3;
    const int warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
    const int row0 = (warp / W::kWarpsN) * W::WM + g, col0 = (warp % W::kWarpsN) * W::WN + g;
PIXGRAD_UNROLL
    for (int kk = 0; kk < BK; kk += Math::kInstructionK) {
      const auto a_at = [&](const auto& tiles, int buffer, int mi, int r) {
        const int m = row0 + mi * 16 + 8 * (r % 2);
        if constexpr (Math::kBf16) {
          const int k = kk + 2 * t + 8 * (r / 2);
          return pack_bf16(tiles.a[buffer][k][m], tiles.a[buffer][k + 1][m]);
        } else {
          return float_bits(tiles.a[buffer][kk + t + 4 * (r / 2)][m]);
        }
      };
      const auto b_at = [&](const auto& tiles, int buffer, int ni, int h) {
        const int n = col0 + ni * 8;
        if constexpr (Math::kBf16) {
          const int k = kk + 2 * t + 8 * h;
          return pack_bf16(tiles.b[buffer][k][n], tiles.b[buffer][k + 1][n]);
        } else {
          return float_bits(tiles.b[buffer][kk + t + 4 * h][n]);
        }
      };
      uint32_t b_big[W::NI][2], b_small[W::NI][2];
PIXGRAD_UNROLL
      for (int ni = 0; ni < W::NI; ++ni)
PIXGRAD_UNROLL
        for (int h = 0; h < 2; ++h) {
          b_big[ni][h] = b_at(s, stage, ni, h);
          if constexpr (kThreePass) b_small[ni][h] = b_at(s.low, low, ni, h);
        }
PIXGRAD_UNROLL
      for (int mi = 0; mi < W::MI; ++mi) {
        uint32_t a_big[4], a_small[4];
PIXGRAD_UNROLL
        for (int r = 0; r < 4; ++r) {
          a_big[r] = a_at(s, stage, mi, r);
          if constexpr (kThreePass) a_small[r] = a_at(s.low, low, mi, r);
        }
PIXGRAD_UNROLL
        for (int ni = 0; ni < W::NI; ++ni) {
          float* d = &acc[(mi * W::NI + ni) * 4];
          if constexpr (kThreePass) {
            mma(d, a_small, b_big[ni]);
            mma(d, a_big, b_small[ni]);
          }
          mma(d, a_big, b_big[ni]);
        }
      }
    }
  }

  __host__ __device__ void finish(const Params& p) const {
    const GemmCommon& c = p.common;
PIXGRAD_UNROLL
    for (int e = 0; e < TM * TN; ++e) {
      const int m = m_block + row_of_element(e), n = n_block + col_of_element(e);
      if (m >= c.M || n >= N) continue;
      if (c.splits == 1)
        Op::store(p, phase, m, n, acc[e]);
      else
        c.partial[((static_cast<int64_t>(phase) * c.splits + split_index) * c.M + m) * c.n_capacity + n] = acc[e];
    }
  }

  // Split-K: this block's output tile's arrival counter; the tiles of a
  // launch are numbered (phase, row of tiles, column of tiles).
  __host__ __device__ unsigned int* arrival_counter(const Params& p) const {
    const GemmCommon& c = p.common;
    const int tiles_m = (c.M + BM - 1) / BM, tiles_n = (c.n_capacity + BN - 1) / BN;
    return c.tile_arrivals + (phase * tiles_m + m_block / BM) * tiles_n + n_block / BN;
  }

  // Split-K, in the block that arrived last (see reduce_split_tile).
  template <class Arrivals>
  __host__ __device__ void reduce_tile(const Params& p, const Arrivals& arrivals) const {
    reduce_split_tile<Op, BM, BN, kThreads>(p, tid, phase, m_block, n_block, N, arrivals);
  }

  __host__ __device__ void write_moments(const Params& p) const {
    write_tile_moments<Op, BM, BN, kThreads>(p, tid, phase, m_block, n_block, N);
  }
};

// The SIMT program. Tile t uses buffer t % 2 and decode-table slot t % 2.
// Per iteration: fetch tile t+1 (its table is ready), multiply tile t, store
// tile t+1, decode tile t+2 into the slot tile t's fetch used, one barrier.
template <class Op, class Cfg, class Math, class Each, class Sync>
__host__ __device__ __forceinline__ void gemm_simt_program(const typename Op::Params& p, GemmShared<Cfg, Math>& shared,
                                                           int k_begin, int k_end, Each&& each, Sync&& sync) {
  using Thread = GemmThread<Op, Cfg, Math>;
  each([&](Thread& t) { t.fill_table(p, shared, 0, k_begin); });
  sync();
  each([&](Thread& t) {
    t.load_tile(p, shared, 0, k_begin);
    t.store_tile(shared, 0);
    t.fill_table(p, shared, 1, k_begin + Cfg::BK);
  });
  sync();
  int buffer = 0;
  for (int k0 = k_begin; k0 < k_end; k0 += Cfg::BK) {
    const bool more = k0 + Cfg::BK < k_end;
    each([&](Thread& t) {
      if (more) t.load_tile(p, shared, buffer ^ 1, k0 + Cfg::BK);
      t.compute(shared, buffer);
      if (more) {
        t.store_tile(shared, buffer ^ 1);
        t.fill_table(p, shared, buffer, k0 + 2 * Cfg::BK);
      }
    });
    sync();
    buffer ^= 1;
  }
  each([&](Thread& t) { t.finish(p); });
}

// The tensor-core program: a ring of S = kStages buffers that asynchronous
// copies fill S - 1 tiles ahead. Tile t sits in stage t % S, its rounded
// remainders (3xTF32) in low buffer t % 2, its decoded k in table slot t % 2.
// Per iteration: wait for this thread's copies of tile t and round them; one
// barrier; multiply tile t; issue the copies of tile t+S-1 into the stage
// tile t-1 used (every thread has multiplied that one: it passed the
// barrier); decode tile t+S into the table slot tile t+S-2's copies read.
// The next iteration's rounding, before its barrier, writes stage (t+1) % S
// and low buffer (t+1) % 2, which nothing in this iteration touches.
template <class Op, class Cfg, class Math, class Each, class Sync, class Mma, class Copy>
__host__ __device__ __forceinline__ void gemm_pipeline_program(const typename Op::Params& p,
                                                               GemmShared<Cfg, Math>& shared, int k_begin, int k_end,
                                                               Each&& each, Sync&& sync, const Mma& mma,
                                                               const Copy& copy) {
  using Thread = GemmThread<Op, Cfg, Math>;
  constexpr int S = kStages<Math>, BK = Cfg::BK;
  const int tiles = k_end > k_begin ? (k_end - k_begin + BK - 1) / BK : 0;
  // Tile u's copies (none past the split: an empty group keeps the count),
  // then the decoding of tile u+1.
  const auto issue = [&](Thread& t, int u) {
    if (u < tiles) t.issue_tile(p, shared, u % 2, u % S, k_begin + u * BK, copy);
    copy.commit();
    t.fill_table(p, shared, (u + 1) % 2, k_begin + (u + 1) * BK);
  };
  each([&](Thread& t) { t.fill_table(p, shared, 0, k_begin); });
  sync();
  for (int u = 0; u < S - 1; ++u) {
    each([&](Thread& t) { issue(t, u); });
    sync();
  }
  for (int tile = 0; tile < tiles; ++tile) {
    each([&](Thread& t) {
      copy.template wait<S - 2>();
      t.round_tile(shared, tile % S, tile % 2);
    });
    sync();
    each([&](Thread& t) {
      t.compute_with_tensor_cores(shared, tile % S, tile % 2, mma);
      issue(t, tile + S - 1);
    });
  }
  each([&](Thread& t) { t.finish(p); });
}

// Split-K, after every thread stored its partial tile: the tile's blocks
// (one per split) take tickets in whatever order they finish, and the one
// that draws the last sums every split's partials in split order and stores
// the result, so the sum is the same whichever block that is, and no second
// launch is needed. Its thread 0 sets the tile's counter back to zero.
// Returns whether this block wrote the tile (alike for the whole block).
template <class Op, class Cfg, class Math, class Each, class Sync, class Arrivals>
__host__ __device__ __forceinline__ bool splitk_program(const typename Op::Params& p, GemmShared<Cfg, Math>& shared,
                                                        Each&& each, Sync&& sync, const Arrivals& arrivals) {
  using Thread = GemmThread<Op, Cfg, Math>;
  each([&](Thread&) { arrivals.publish(); });
  sync();
  each([&](Thread& t) {
    if (t.tid == 0) shared.ticket = arrivals.take_ticket(t.arrival_counter(p));
  });
  sync();
  if (shared.ticket + 1 != static_cast<unsigned int>(p.common.splits)) return false;  // alike for the whole block
  each([&](Thread& t) {
    t.reduce_tile(p, arrivals);
    if (t.tid == 0) arrivals.reset(t.arrival_counter(p));
  });
  return true;
}

// The block's program for its math. `each(step)` runs step(thread) for the
// block's threads (on the device: for this thread), `sync()` is the barrier,
// `mma` the warp's tensor-core instruction, `copy` the asynchronous copy and
// `arrivals` split-K's hand-over between blocks, so that the host model
// (tests/cuda_host) runs this very program for all 256 threads in turn, with
// stand-ins for the instructions no single thread can run alone. Its `each`
// plays the instructions a step's threads issued, warp by warp, once all of
// them have run the step.
template <class Op, class Cfg, class Math, class Each, class Sync, class Mma, class Copy, class Arrivals>
__host__ __device__ __forceinline__ void gemm_block_program(const typename Op::Params& p, GemmShared<Cfg, Math>& shared,
                                                            int k_begin, int k_end, Each&& each, Sync&& sync,
                                                            const Mma& mma, const Copy& copy,
                                                            const Arrivals& arrivals) {
  if constexpr (Math::kPasses == 0) {
    (void)mma, (void)copy;
    gemm_simt_program<Op, Cfg, Math>(p, shared, k_begin, k_end, each, sync);
  } else {
    gemm_pipeline_program<Op, Cfg, Math>(p, shared, k_begin, k_end, each, sync, mma, copy);
  }
  const bool wrote_tile = p.common.splits == 1 || splitk_program<Op, Cfg, Math>(p, shared, each, sync, arrivals);
  if constexpr (Op::kWritesMoments) {
    if (wrote_tile && p.common.moments != nullptr) {
      sync();  // the whole tile stored, and visible to the block
      each([&](GemmThread<Op, Cfg, Math>& t) { t.write_moments(p); });
    }
  }
}

template <class Shared>
__device__ __forceinline__ Shared& block_shared() {
  if constexpr (kDynamicShared<Shared>) {
    extern __shared__ __align__(16) unsigned char dynamic_shared[];
    return *reinterpret_cast<Shared*>(dynamic_shared);
  } else {
    __shared__ Shared shared;
    return shared;
  }
}

template <class Op, class Cfg, class Math>
__global__ void __launch_bounds__(Cfg::kThreads, 2) implicit_gemm_kernel(const __grid_constant__ typename Op::Params p) {
  GemmShared<Cfg, Math>& shared = block_shared<GemmShared<Cfg, Math>>();
  GemmThread<Op, Cfg, Math> t;
  // setup() fails alike for every thread of a block, so all return before the first barrier.
  if (!t.setup(p, static_cast<int>(threadIdx.x), blockIdx)) return;
  gemm_block_program<Op, Cfg, Math>(
      p, shared, t.k_begin, t.k_end, [&](auto&& step) { step(t); }, [] { __syncthreads(); }, WarpMma<Math>{},
      AsyncCopy{}, DeviceArrivals{});
}

// ---- bias gradient ------------------------------------------------------------
// The blocks' and threads' work is in kernels/cuda/bias_gradient.h.

__global__ void __launch_bounds__(kBiasThreads)
    bias_partial_kernel(const float* __restrict__ grad_output, int batch, int channels, int pixels, int chunk,
                        double* __restrict__ partial) {
  __shared__ double lanes[kBiasThreads];
  bias_partial_block(
      grad_output, batch, channels, pixels, chunk, partial, lanes, static_cast<int>(blockIdx.x),
      static_cast<int>(gridDim.x), static_cast<int>(blockIdx.y), static_cast<int>(gridDim.y),
      [](auto&& step) { step(static_cast<int>(threadIdx.x)); }, [] { __syncthreads(); });
}

__global__ void bias_finish_kernel(const double* __restrict__ partial, int channels, int chunks,
                                   float* __restrict__ grad_bias) {
  bias_finish_thread(partial, channels, chunks, grad_bias, static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x));
}

// ---- host side ---------------------------------------------------------------------

constexpr int64_t kIndexLimit = int64_t{1} << 30;  // elements per tensor for 32-bit offsets
constexpr int kMinTilesPerSplit = 4;                 // a split covers at least 4*BK of K
constexpr int kMaxSplits = 256;
constexpr int64_t kMaxPartialFloats = int64_t{1} << 26;  // 256 MiB of split-K scratch

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

int to_int(int64_t value) { return static_cast<int>(value); }  // callers checked the range

// Each gathered tensor, padded by a kernel's extent on every side, must stay
// below 2^30 elements: then base(n) + offset(k) and every row/column sum fits
// in an int (see kInvalidRow too).
void check_index_range(const char* op, const Conv2dGeometry& g) {
  const int64_t margin_h = 2 * g.padding + g.kernel_h, margin_w = 2 * g.padding + g.kernel_w;
  const int64_t input = g.batch * g.in_channels * (g.in_height + margin_h) * (g.in_width + margin_w);
  const int64_t output = g.batch * g.out_channels * (g.out_height() + margin_h) * (g.out_width() + margin_w);
  const int64_t weight = g.out_channels * g.in_channels * g.kernel_h * g.kernel_w;
  PIXGRAD_CHECK(input <= kIndexLimit && output <= kIndexLimit && weight <= kIndexLimit, op,
                " (cuda, handwritten): tensors too large for 32-bit index math (batch=", g.batch, " in=[",
                g.in_channels, ", ", g.in_height, ", ", g.in_width, "] out_channels=", g.out_channels, " kernel=",
                g.kernel_h, "x", g.kernel_w, "); use PIXGRAD_CONV_IMPL=cudnn");
}

// What launches and queries the device; left out where the host model
// (tests/cuda_host/implicit_gemm_host_model.cu) includes this file to run
// the kernel's code on the host.
#ifndef PIXGRAD_CONV_HOST_MODEL
// A positive per-device value, worked out by `compute(device)` on the current
// device's first call and kept in `slots` (devices past the table are asked
// every time).
constexpr int kMaxDevices = 64;
template <class Compute>
int once_per_device(std::atomic<int> (&slots)[kMaxDevices], Compute compute) {
  const int device = ::pixgrad::cuda::current_device();
  const bool cached = device >= 0 && device < kMaxDevices;
  int value = cached ? slots[device].load(std::memory_order_relaxed) : 0;
  if (value <= 0) {
    value = compute(device);
    if (cached) slots[device].store(value, std::memory_order_relaxed);
  }
  return value;
}

int multiprocessor_count() {
  static std::atomic<int> counts[kMaxDevices];
  return once_per_device(counts, [](int device) {
    int count = 0;
    PIXGRAD_CUDA_CHECK(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device));
    return count;
  });
}
#endif  // PIXGRAD_CONV_HOST_MODEL

// How a launch of `tiles` output tiles over `k_tiles` K-tiles is split,
// given how many blocks of the kernel the GPU holds at once (one wave: two
// per SM on an H100/H200, where the launch bounds allow 128 registers and
// every tile's shared memory fits twice; fewer where shared memory is
// smaller). With fewer than half a wave of tiles, K is split so that tiles *
// splits still fits in one wave (more would only add waves and partial-sum
// traffic), into equal runs of whole K-tiles, none empty, each at least
// kMinTilesPerSplit long. A function of the shape and the GPU only, so a
// given GPU always sums in the same order.
struct SplitPlan {
  int splits;
  int k_per_split;
};

SplitPlan plan_splits(int64_t tiles, int64_t k_tiles, int bk, int64_t floats_per_split, int64_t resident_blocks) {
  int64_t splits = 1;
  if (k_tiles >= 2 * kMinTilesPerSplit) {
    splits = std::min({resident_blocks / std::max<int64_t>(1, tiles), k_tiles / kMinTilesPerSplit,
                       int64_t{kMaxSplits}, kMaxPartialFloats / std::max<int64_t>(1, floats_per_split)});
    splits = std::max<int64_t>(1, splits);
  }
  const int64_t tiles_per_split = std::max<int64_t>(1, ceil_div(k_tiles, splits));
  splits = k_tiles > 0 ? ceil_div(k_tiles, tiles_per_split) : 1;
  return {to_int(splits), to_int(tiles_per_split * bk)};
}

// Fills in the split of `p` for tile configuration Cfg; the grid to launch.
template <class Op, class Cfg>
dim3 prepare_launch(typename Op::Params& p, int phases, int max_n, int max_k, int64_t resident_blocks) {
  GemmCommon& c = p.common;
  const int64_t grid_n = ceil_div(max_n, Cfg::BN), grid_m = ceil_div(c.M, Cfg::BM);
  PIXGRAD_CHECK(grid_m <= 65535, "conv2d (cuda, handwritten): ", c.M, " channels are too many for one grid");
  const SplitPlan plan = plan_splits(grid_n * grid_m * phases, ceil_div(max_k, Cfg::BK), Cfg::BK,
                                     static_cast<int64_t>(phases) * c.M * max_n, resident_blocks);
  c.splits = plan.splits;
  c.k_per_split = plan.k_per_split;
  c.n_capacity = max_n;
  c.partial = nullptr;
  c.tile_arrivals = nullptr;
  return dim3(static_cast<unsigned int>(grid_n), static_cast<unsigned int>(grid_m),
              static_cast<unsigned int>(phases * plan.splits));
}

#ifndef PIXGRAD_CONV_HOST_MODEL
// How many blocks of the kernel the current GPU holds at once, once per
// device and kernel; the first call also lets a block with more than 48 KiB
// of shared memory ask for it.
template <class Op, class Cfg, class Math>
int64_t resident_blocks() {
  static std::atomic<int> per_multiprocessor[kMaxDevices];
  const int blocks = once_per_device(per_multiprocessor, [](int) {
    const auto kernel = implicit_gemm_kernel<Op, Cfg, Math>;
    constexpr size_t kDynamicBytes = dynamic_shared_bytes<GemmShared<Cfg, Math>>;
    if constexpr (kDynamicBytes > 0) {
      PIXGRAD_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                              static_cast<int>(kDynamicBytes)));
    }
    int count = 0;
    PIXGRAD_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&count, kernel, Cfg::kThreads, kDynamicBytes));
    PIXGRAD_CHECK(count > 0, "conv2d (cuda, handwritten): a ", Cfg::BM, "x", Cfg::BN, " block does not fit on this GPU");
    return count;
  });
  return static_cast<int64_t>(blocks) * multiprocessor_count();
}

// Split-K's arrival counters, one per output tile of a launch: an array per
// device, zeroed when it is made and left at zero by every launch (each
// tile's last block resets its counter), so launches need no memset. The
// launches of a device run in order on its one stream and never use the
// counters at the same time. A split launch has at most half a wave of tiles
// (tiles * splits fit one wave, splits >= 2): 4 per SM at 8 blocks per SM.
constexpr int64_t kMaxTileArrivals = int64_t{1} << 16;

unsigned int* tile_arrivals(int64_t tiles) {
  PIXGRAD_CHECK(tiles <= kMaxTileArrivals, "conv2d (cuda, handwritten): ", tiles,
                " split output tiles in one launch, more than the ", kMaxTileArrivals, " counters");
  static std::atomic<unsigned int*> arrays[kMaxDevices];
  static std::mutex mutex;
  const int device = ::pixgrad::cuda::current_device();
  PIXGRAD_CHECK(device >= 0 && device < kMaxDevices, "conv2d (cuda, handwritten): device ", device,
                " is past the ", kMaxDevices, " devices split-K keeps counters for");
  unsigned int* counters = arrays[device].load(std::memory_order_acquire);
  if (counters) return counters;
  const std::lock_guard<std::mutex> lock(mutex);
  counters = arrays[device].load(std::memory_order_acquire);
  if (counters) return counters;
  const cudaStream_t stream = ::pixgrad::cuda::current_stream();
  ::pixgrad::cuda::refuse_set_up_in_capture("conv2d (cuda, handwritten): the first split convolution on a device",
                                            "its counters");
  const size_t bytes = static_cast<size_t>(kMaxTileArrivals) * sizeof(unsigned int);
  PIXGRAD_CUDA_CHECK(cudaMalloc(&counters, bytes));  // kept for the life of the process
  PIXGRAD_CUDA_CHECK(cudaMemsetAsync(counters, 0, bytes, stream));  // before any launch that reads them
  arrays[device].store(counters, std::memory_order_release);
  return counters;
}

// The GEMM and, when split, its scratch buffer and arrival counters.
template <class Op, class Cfg, class Math>
void launch(typename Op::Params& p, int phases, int max_n, int max_k) {
  const dim3 grid = prepare_launch<Op, Cfg>(p, phases, max_n, max_k, resident_blocks<Op, Cfg, Math>());
  const GemmCommon& c = p.common;
  Workspace partial;  // given back after the launches are queued: the stream orders any reuse
  if (c.splits > 1) {
    partial = Workspace::of<float>(static_cast<int64_t>(phases) * c.splits * c.M * max_n);
    p.common.partial = partial.as<float>();
    p.common.tile_arrivals = tile_arrivals(static_cast<int64_t>(grid.x) * grid.y * phases);
  }
  const cudaStream_t stream = ::pixgrad::cuda::current_stream();
  implicit_gemm_kernel<Op, Cfg, Math>
      <<<grid, Cfg::kThreads, dynamic_shared_bytes<GemmShared<Cfg, Math>>, stream>>>(p);
  PIXGRAD_CUDA_CHECK_LAUNCH();
}

// The tile shape follows M (output channels, or input channels for backward
// data) and N: a 128-row tile on a 3-channel layer, or a 128-column tile on a
// 1x1 bottleneck at batch 1, would compute almost nothing but padding.
// The 8-row tile has no tensor-core form (an m16 instruction would be half
// padding) and stays SIMT FP32 at every precision: it serves the layers of
// 1-8 channels, a small share of the work.
template <class Op, class Math>
void run_at(typename Op::Params& p, int phases, int max_n, int max_k) {
  if (p.common.M > 32 && max_n <= 32)
    launch<Op, TileFor<TileNarrow, Math>, Math>(p, phases, max_n, max_k);
  else if (p.common.M > 64)
    launch<Op, TileFor<TileLarge, Math>, Math>(p, phases, max_n, max_k);
  else if (p.common.M > 32)
    launch<Op, TileFor<TileMedium, Math>, Math>(p, phases, max_n, max_k);
  else if (p.common.M > kFp32OnlyRows)
    launch<Op, TileFor<TileSmall, Math>, Math>(p, phases, max_n, max_k);
  else
    launch<Op, TileTiny, SimtFp32>(p, phases, max_n, max_k);
}

template <class Op>
void run(typename Op::Params& p, int phases, int max_n, int max_k, ConvPrecision precision) {
  if (max_n <= 0 || p.common.M <= 0) return;
  switch (precision) {
    case ConvPrecision::Fp32: return run_at<Op, SimtFp32>(p, phases, max_n, max_k);
    case ConvPrecision::Tf32: return run_at<Op, Tf32>(p, phases, max_n, max_k);
    case ConvPrecision::Tf32x3: return run_at<Op, Tf32x3>(p, phases, max_n, max_k);
    case ConvPrecision::Bf16: return run_at<Op, Bf16>(p, phases, max_n, max_k);
  }
  fail("conv2d (cuda, handwritten): unknown precision ", static_cast<int>(precision));
}

// Tensor-core TF32 needs compute capability 8.0 (Ampere) or newer, in the GPU
// and in the code built for it: kernels compiled for an older architecture
// (CMAKE_CUDA_ARCHITECTURES below 80, run through the driver's JIT) have no
// mma instruction and would stop at the kernel's trap instead.
ConvPrecision checked_precision(const char* op) {
  const ConvPrecision precision = conv_precision();
  if (precision == ConvPrecision::Fp32) return precision;
  static std::atomic<int> verified[kMaxDevices];
  once_per_device(verified, [&](int device) {
    int major = 0;
    PIXGRAD_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
    PIXGRAD_CHECK(major >= 8, op, " (cuda, handwritten): precision ", to_string(precision), " needs tensor cores of ",
                  "compute capability 8.0 or newer; this GPU is ", major, ".x (use --precision fp32)");
    cudaFuncAttributes kernel{};
    PIXGRAD_CUDA_CHECK(cudaFuncGetAttributes(&kernel, implicit_gemm_kernel<ForwardOp, TileFor<TileLarge, Tf32>, Tf32>));
    PIXGRAD_CHECK(kernel.ptxVersion >= 80, op, " (cuda, handwritten): precision ", to_string(precision),
                  " needs kernels built for compute capability 8.0 or newer; this build's are for ",
                  kernel.ptxVersion / 10, ".", kernel.ptxVersion % 10,
                  " (rebuild with -DCMAKE_CUDA_ARCHITECTURES=90, or use --precision fp32)");
    return 1;
  });
  return precision;
}

#endif  // PIXGRAD_CONV_HOST_MODEL

// The rows and columns of input pixels in stride phase (ph, pw) of backward data.
struct PhaseExtent {
  int rows, cols;
};
PhaseExtent phase_extent(const Conv2dGeometry& g, int64_t ph, int64_t pw) {
  return {to_int(ph < g.in_height ? ceil_div(g.in_height - ph, g.stride) : 0),
          to_int(pw < g.in_width ? ceil_div(g.in_width - pw, g.stride) : 0)};
}

ForwardOp::Params forward_params(const Conv2dGeometry& g, const float* input, const float* weight,
                                 const float* bias, float* output, MomentRecord* moments = nullptr) {
  const int out_h = to_int(g.out_height()), out_w = to_int(g.out_width());
  ForwardOp::Params p{};
  p.common.a = weight;
  p.common.b = input;
  p.common.M = to_int(g.out_channels);
  p.common.m_stride = to_int(g.in_channels * g.kernel_h * g.kernel_w);
  p.common.b_height = to_int(g.in_height);
  p.common.b_width = to_int(g.in_width);
  p.output = output;
  p.bias = bias;
  p.K = p.common.m_stride;
  p.N = to_int(g.batch) * out_h * out_w;
  p.pixels = FastDivmod(out_h * out_w);
  p.out_w = FastDivmod(out_w);
  p.taps = FastDivmod(to_int(g.kernel_h * g.kernel_w));
  p.kernel_w = FastDivmod(to_int(g.kernel_w));
  p.stride = to_int(g.stride);
  p.padding = to_int(g.padding);
  p.in_image = to_int(g.in_channels * g.in_height * g.in_width);
  p.in_plane = to_int(g.in_height * g.in_width);
  p.in_w = to_int(g.in_width);
  p.common.moments = moments;
  p.common.moment_stride = to_int(moment_records(ConvPass::Forward, g));
  return p;
}

// Calls launch_phases(params, count, max_n, max_k) once per group of up to
// kMaxPhases stride phases (one group unless stride > 4).
template <class LaunchPhases>
void backward_data_launches(const Conv2dGeometry& g, const float* grad_output, const float* weight,
                            float* grad_input, MomentRecord* moments, LaunchPhases&& launch_phases) {
  const int batch = to_int(g.batch), in_h = to_int(g.in_height), in_w = to_int(g.in_width);
  const int out_h = to_int(g.out_height()), out_w = to_int(g.out_width());
  const int kernel_h = to_int(g.kernel_h), kernel_w = to_int(g.kernel_w);
  const int stride = to_int(g.stride), padding = to_int(g.padding), out_channels = to_int(g.out_channels);
  BackwardDataOp::Params p{};
  p.common.a = weight;
  p.common.b = grad_output;
  p.common.M = to_int(g.in_channels);
  p.common.m_stride = kernel_h * kernel_w;
  p.common.b_height = out_h;
  p.common.b_width = out_w;
  p.grad_input = grad_input;
  p.stride = stride;
  p.kernel_w = kernel_w;
  p.weight_out_stride = to_int(g.in_channels) * kernel_h * kernel_w;
  p.out_image = out_channels * out_h * out_w;
  p.out_plane = out_h * out_w;
  p.out_w = out_w;
  p.in_h = in_h;
  p.in_w = in_w;
  p.common.moments = moments;
  p.common.moment_stride = to_int(moment_records(ConvPass::BackwardData, g));
  int records_before = 0;  // a row's records of the phases before this one
  // Phase index i = ph * stride + pw.
  const int64_t phase_count = static_cast<int64_t>(stride) * stride;
  for (int64_t first = 0; first < phase_count; first += kMaxPhases) {
    const int count = static_cast<int>(std::min<int64_t>(kMaxPhases, phase_count - first));
    int max_n = 0, max_k = 0;
    for (int i = 0; i < count; ++i) {
      const int ph = static_cast<int>((first + i) / stride), pw = static_cast<int>((first + i) % stride);
      const int r0 = (ph + padding) % stride, s0 = (pw + padding) % stride;
      const int taps_h = r0 < kernel_h ? (kernel_h - r0 + stride - 1) / stride : 0;
      const int taps_w = s0 < kernel_w ? (kernel_w - s0 + stride - 1) / stride : 0;
      const auto [rows, cols] = phase_extent(g, ph, pw);
      DataPhase& f = p.phases[i];
      f.K = out_channels * taps_h * taps_w;
      f.N = batch * rows * cols;
      f.pixels = FastDivmod(rows * cols);
      f.cols = FastDivmod(cols);
      f.taps = FastDivmod(taps_h * taps_w);
      f.taps_w = FastDivmod(taps_w);
      f.row_offset = (ph + padding - r0) / stride;
      f.col_offset = (pw + padding - s0) / stride;
      f.first_r = r0;
      f.first_s = s0;
      f.in_row = ph;
      f.in_col = pw;
      f.first_record = records_before;
      records_before += static_cast<int>(records_for(f.N));
      max_n = std::max(max_n, f.N);
      max_k = std::max(max_k, f.K);
    }
    launch_phases(p, count, max_n, max_k);
  }
}

BackwardWeightOp::Params backward_weight_params(const Conv2dGeometry& g, const float* input,
                                                const float* grad_output, float* grad_weight) {
  const int out_h = to_int(g.out_height()), out_w = to_int(g.out_width());
  BackwardWeightOp::Params p{};
  p.common.a = grad_output;
  p.common.b = input;
  p.common.M = to_int(g.out_channels);
  p.common.m_stride = out_h * out_w;
  p.common.b_height = to_int(g.in_height);
  p.common.b_width = to_int(g.in_width);
  p.grad_weight = grad_weight;
  p.K = to_int(g.batch) * out_h * out_w;
  p.N = to_int(g.in_channels * g.kernel_h * g.kernel_w);
  p.pixels = FastDivmod(out_h * out_w);
  p.out_w = FastDivmod(out_w);
  p.taps = FastDivmod(to_int(g.kernel_h * g.kernel_w));
  p.kernel_w = FastDivmod(to_int(g.kernel_w));
  p.stride = to_int(g.stride);
  p.padding = to_int(g.padding);
  p.out_image = to_int(g.out_channels) * out_h * out_w;
  p.in_image = to_int(g.in_channels * g.in_height * g.in_width);
  p.in_plane = to_int(g.in_height * g.in_width);
  p.in_w = to_int(g.in_width);
  return p;
}

}  // namespace

// A row's records: its runs of 32 columns, phase after phase for backward data.
int64_t moment_records(ConvPass pass, const Conv2dGeometry& g) {
  if (pass == ConvPass::Forward) return records_for(g.batch * g.out_height() * g.out_width());
  PIXGRAD_CHECK(pass == ConvPass::BackwardData, "conv2d (cuda, handwritten): a weight gradient has no moments");
  int64_t records = 0;
  for (int64_t ph = 0; ph < g.stride; ++ph)
    for (int64_t pw = 0; pw < g.stride; ++pw) {
      const PhaseExtent e = phase_extent(g, ph, pw);
      records += records_for(g.batch * e.rows * e.cols);
    }
  return records;
}

#ifndef PIXGRAD_CONV_HOST_MODEL
void implicit_gemm_forward(const Conv2dGeometry& g, const float* input, const float* weight, const float* bias,
                           float* output, MomentRecord* moments) {
  check_index_range("conv2d_forward", g);
  const ConvPrecision precision = checked_precision("conv2d_forward");
  ForwardOp::Params p = forward_params(g, input, weight, bias, output, moments);
  run<ForwardOp>(p, 1, p.N, p.K, precision);
}

void implicit_gemm_backward_data(const Conv2dGeometry& g, const float* grad_output, const float* weight,
                                 float* grad_input, MomentRecord* moments) {
  check_index_range("conv2d_backward_data", g);
  const ConvPrecision precision = checked_precision("conv2d_backward_data");
  backward_data_launches(g, grad_output, weight, grad_input, moments,
                         [precision](BackwardDataOp::Params& p, int phases, int max_n, int max_k) {
                           run<BackwardDataOp>(p, phases, max_n, max_k, precision);
                         });
}

void implicit_gemm_backward_weight(const Conv2dGeometry& g, const float* input, const float* grad_output,
                                   float* grad_weight, float* grad_bias) {
  check_index_range("conv2d_backward_weight", g);
  const ConvPrecision precision = checked_precision("conv2d_backward_weight");
  BackwardWeightOp::Params p = backward_weight_params(g, input, grad_output, grad_weight);
  run<BackwardWeightOp>(p, 1, p.N, p.K, precision);
  if (grad_bias) conv2d_bias_backward(g, grad_output, grad_bias);
}

void conv2d_bias_backward(const Conv2dGeometry& g, const float* grad_output, float* grad_bias) {
  const int64_t pixels = g.out_height() * g.out_width();
  PIXGRAD_CHECK(pixels < kIndexLimit && g.out_channels < kIndexLimit && g.batch < kIndexLimit,
                "conv2d bias gradient (cuda): ", g.out_channels, " channels of ", pixels, " pixels are too many");
  const int channels = to_int(g.out_channels);
  const BiasPlan plan = plan_bias(channels, pixels, multiprocessor_count());
  const Workspace partial = Workspace::of<double>(2 * static_cast<int64_t>(channels) * plan.chunks);
  double* partial_sums = partial.as<double>();
  const cudaStream_t stream = ::pixgrad::cuda::current_stream();
  const dim3 grid(static_cast<unsigned int>(plan.chunks), static_cast<unsigned int>(std::min(channels, 65535)));
  bias_partial_kernel<<<grid, kBiasThreads, 0, stream>>>(grad_output, to_int(g.batch), channels, to_int(pixels),
                                                         plan.chunk, partial_sums);
  PIXGRAD_CUDA_CHECK_LAUNCH();
  bias_finish_kernel<<<static_cast<unsigned int>(ceil_div(channels, kBiasFinishThreads)), kBiasFinishThreads, 0,
                       stream>>>(partial_sums, channels, plan.chunks, grad_bias);
  PIXGRAD_CUDA_CHECK_LAUNCH();
}
#endif  // PIXGRAD_CONV_HOST_MODEL

}  // namespace pixgrad::kernels::cuda::detail
