#include <pixgrad/kernels/cpu/conv2d_winograd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <pixgrad/kernels/cpu/gemm.h>

namespace pixgrad::kernels::cpu {
namespace {

#define PIXGRAD_AVX2_FMA __attribute__((target("avx2,fma")))

// Eight tiles side by side: the transforms run on eight tiles of one row at
// once, as plain vector arithmetic.
typedef float Lanes __attribute__((vector_size(32)));
constexpr int kLanes = 8;

constexpr int kAlpha = 5;   // input tile side
constexpr int kPoints = kAlpha * kAlpha;
constexpr int kKernel = 4;

// Points 0, 1, -1, -2, infinity; rows of B^T scaled by 2, 6, 2, 6, 1 to
// integers, and the rows of G by the inverse factors.
constexpr float kBT[kAlpha][kAlpha] = {
    {2, 1, -2, -1, 0}, {0, 2, 3, 1, 0}, {0, -2, 1, 1, 0}, {0, 1, 0, -1, 0}, {0, -2, -1, 2, 1}};
constexpr float kG[kAlpha][kKernel] = {{1.0f / 2, 0, 0, 0},
                                       {1.0f / 6, 1.0f / 6, 1.0f / 6, 1.0f / 6},
                                       {1.0f / 2, -1.0f / 2, 1.0f / 2, -1.0f / 2},
                                       {1.0f / 6, -1.0f / 3, 2.0f / 3, -4.0f / 3},
                                       {0, 0, 0, 1}};
constexpr float kAT[2][kAlpha] = {{1, 1, 1, 1, 0}, {0, 1, -1, -2, 1}};

PIXGRAD_AVX2_FMA inline Lanes load(const float* p) {
  Lanes v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
PIXGRAD_AVX2_FMA inline void store(float* p, Lanes v) { std::memcpy(p, &v, sizeof v); }

// The stride-1 correlation of `batch` images [channels, height, width] with
// out_channels 4x4 filters, zero padding `pad`, cut into 2x2 output tiles;
// each row of tiles is padded to whole groups of eight.
struct Tiling {
  int64_t batch, channels, height, width, out_channels, pad;
  int64_t out_height() const { return height + 2 * pad - kKernel + 1; }
  int64_t out_width() const { return width + 2 * pad - kKernel + 1; }
  int64_t tile_rows() const { return (out_height() + 1) / 2; }
  int64_t tile_cols() const { return (out_width() + 1) / 2; }
  int64_t padded_tile_cols() const { return (tile_cols() + kLanes - 1) / kLanes * kLanes; }
  int64_t tiles() const { return batch * tile_rows() * padded_tile_cols(); }
};

// U[point][o][i] = (G g G^T)[point] for the filter g that maps input channel
// i to output channel o; `tap(o, i, ky, kx)` reads it. Eight filters at a
// time, one per lane.
// (The loop bodies are functions of their own: an OpenMP region is outlined
// into a function without the enclosing function's target attribute.)
template <typename Tap>
PIXGRAD_AVX2_FMA void transform_weight_group(int64_t in_channels, int64_t pairs, Tap tap, float* U, int64_t group) {
  {
    const int64_t first = group * kLanes;
    Lanes g[kKernel][kKernel], half[kAlpha][kKernel];
    for (int ky = 0; ky < kKernel; ++ky)
      for (int kx = 0; kx < kKernel; ++kx)
        for (int lane = 0; lane < kLanes; ++lane) {
          const int64_t pair = std::min(first + lane, pairs - 1);
          g[ky][kx][lane] = tap(pair / in_channels, pair % in_channels, ky, kx);
        }
    for (int a = 0; a < kAlpha; ++a)
      for (int kx = 0; kx < kKernel; ++kx) {
        Lanes sum = kG[a][0] * g[0][kx];
        for (int ky = 1; ky < kKernel; ++ky) sum += kG[a][ky] * g[ky][kx];
        half[a][kx] = sum;
      }
    for (int a = 0; a < kAlpha; ++a)
      for (int b = 0; b < kAlpha; ++b) {
        Lanes sum = half[a][0] * kG[b][0];
        for (int kx = 1; kx < kKernel; ++kx) sum += half[a][kx] * kG[b][kx];
        float* destination = U + (a * kAlpha + b) * pairs + first;
        if (first + kLanes <= pairs) {
          store(destination, sum);
        } else {
          for (int64_t lane = 0; lane < pairs - first; ++lane) destination[lane] = sum[lane];
        }
      }
  }
}

template <typename Tap>
void transform_weights(int64_t out_channels, int64_t in_channels, Tap tap, float* U) {
  const int64_t pairs = out_channels * in_channels, groups = (pairs + kLanes - 1) / kLanes;
#pragma omp parallel for schedule(static)
  for (int64_t group = 0; group < groups; ++group) transform_weight_group(in_channels, pairs, tap, U, group);
}

// V[point][channel][tile] = (B^T d B)[point] for every input tile d. The five
// input rows of a tile row are split into even and odd columns, so that the
// five columns each tile reads are five unit-stride loads over eight tiles.
PIXGRAD_AVX2_FMA void transform_input_plane(const Tiling& t, const float* input, float* V, int64_t plane) {
  const int64_t tile_rows = t.tile_rows(), cols = t.padded_tile_cols(), tiles = t.tiles();
  const int64_t split_width = cols + 2 + kLanes;
  {
    const int64_t image = plane / t.channels, channel = plane % t.channels;
    const float* source = input + plane * t.height * t.width;
    std::vector<float> even(static_cast<size_t>(kAlpha * split_width)), odd(even.size());
    for (int64_t ty = 0; ty < tile_rows; ++ty) {
      for (int i = 0; i < kAlpha; ++i) {
        float* e = even.data() + i * split_width;
        float* o = odd.data() + i * split_width;
        const int64_t row = 2 * ty + i - t.pad;
        const bool inside = row >= 0 && row < t.height;
        for (int64_t k = 0; k < split_width; ++k) {
          const int64_t x0 = 2 * k - t.pad, x1 = x0 + 1;
          e[k] = inside && x0 >= 0 && x0 < t.width ? source[row * t.width + x0] : 0.0f;
          o[k] = inside && x1 >= 0 && x1 < t.width ? source[row * t.width + x1] : 0.0f;
        }
      }
      const int64_t first_tile = (image * tile_rows + ty) * cols;
      for (int64_t tx = 0; tx < cols; tx += kLanes) {
        Lanes rows[kAlpha][kAlpha];  // B^T applied along x: rows[input row][point x]
        for (int i = 0; i < kAlpha; ++i) {
          const float* e = even.data() + i * split_width + tx;
          const float* o = odd.data() + i * split_width + tx;
          const Lanes d[kAlpha] = {load(e), load(o), load(e + 1), load(o + 1), load(e + 2)};
          for (int b = 0; b < kAlpha; ++b) {
            Lanes sum = kBT[b][0] * d[0];
            for (int j = 1; j < kAlpha; ++j) sum += kBT[b][j] * d[j];
            rows[i][b] = sum;
          }
        }
        for (int a = 0; a < kAlpha; ++a)
          for (int b = 0; b < kAlpha; ++b) {
            Lanes sum = kBT[a][0] * rows[0][b];
            for (int i = 1; i < kAlpha; ++i) sum += kBT[a][i] * rows[i][b];
            store(V + ((a * kAlpha + b) * t.channels + channel) * tiles + first_tile + tx, sum);
          }
      }
    }
  }
}

void transform_input(const Tiling& t, const float* input, float* V) {
  const int64_t planes = t.batch * t.channels;
#pragma omp parallel for schedule(static)
  for (int64_t plane = 0; plane < planes; ++plane) transform_input_plane(t, input, V, plane);
}

// output = A^T m A for every tile, written where the output has pixels.
PIXGRAD_AVX2_FMA void transform_output_plane(const Tiling& t, const float* M, float* output, int64_t plane) {
  const int64_t tile_rows = t.tile_rows(), cols = t.padded_tile_cols(), tiles = t.tiles();
  const int64_t out_h = t.out_height(), out_w = t.out_width();
  {
    const int64_t image = plane / t.out_channels, channel = plane % t.out_channels;
    float* destination = output + plane * out_h * out_w;
    for (int64_t ty = 0; ty < tile_rows; ++ty) {
      const int64_t first_tile = (image * tile_rows + ty) * cols;
      for (int64_t tx = 0; tx < cols; tx += kLanes) {
        Lanes half[kAlpha][2];  // A^T applied along x: half[point y][output x]
        for (int a = 0; a < kAlpha; ++a) {
          Lanes m[kAlpha];
          for (int b = 0; b < kAlpha; ++b)
            m[b] = load(M + ((a * kAlpha + b) * t.out_channels + channel) * tiles + first_tile + tx);
          for (int x = 0; x < 2; ++x) {
            Lanes sum = kAT[x][0] * m[0];
            for (int b = 1; b < kAlpha; ++b) sum += kAT[x][b] * m[b];
            half[a][x] = sum;
          }
        }
        for (int y = 0; y < 2; ++y) {
          const int64_t row = 2 * ty + y;
          if (row >= out_h) continue;
          float pixels[2 * kLanes];
          for (int x = 0; x < 2; ++x) {
            Lanes sum = kAT[y][0] * half[0][x];
            for (int a = 1; a < kAlpha; ++a) sum += kAT[y][a] * half[a][x];
            for (int lane = 0; lane < kLanes; ++lane) pixels[2 * lane + x] = sum[lane];
          }
          const int64_t column = 2 * tx, count = std::min<int64_t>(2 * kLanes, out_w - column);
          if (count > 0)
            std::memcpy(destination + row * out_w + column, pixels, static_cast<size_t>(count) * sizeof(float));
        }
      }
    }
  }
}

void transform_output(const Tiling& t, const float* M, float* output) {
  const int64_t planes = t.batch * t.out_channels;
#pragma omp parallel for schedule(static)
  for (int64_t plane = 0; plane < planes; ++plane) transform_output_plane(t, M, output, plane);
}

thread_local std::vector<float> tls_workspace;

float* workspace(int64_t count) {
  if (static_cast<int64_t>(tls_workspace.size()) < count) tls_workspace.resize(static_cast<size_t>(count));
  return tls_workspace.data();
}

// The correlation: the filters transformed by `transform` (called with U),
// the inputs, 25 products over the channels, the outputs back.
template <typename TransformWeights>
void correlate(const Tiling& t, const float* input, TransformWeights transform, float* output) {
  const int64_t tiles = t.tiles(), filters = t.out_channels * t.channels;
  float* U = workspace(kPoints * (filters + (t.channels + t.out_channels) * tiles));
  float* V = U + kPoints * filters;
  float* M = V + kPoints * t.channels * tiles;
  transform(U);
  transform_input(t, input, V);
  // One product per thread at a time: each is small (256 x 256 x 256 for the
  // PatchGAN layer), and splitting each over the threads would make them
  // meet 25 times per pass.
#pragma omp parallel for schedule(dynamic, 1)
  for (int point = 0; point < kPoints; ++point)
    sgemm(false, false, t.out_channels, tiles, t.channels, 1.0f, U + point * filters, t.channels,
          V + point * t.channels * tiles, tiles, 0.0f, M + point * t.out_channels * tiles, tiles);
  transform_output(t, M, output);
}

bool enabled_by_environment() {
  const char* setting = std::getenv("PIXGRAD_CPU_WINOGRAD");
  return !(setting && std::strcmp(setting, "0") == 0);
}

}  // namespace

bool winograd_conv_applies(const Conv2dGeometry& g) {
  static const bool available =
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && enabled_by_environment();
  return available && g.stride == 1 && g.kernel_h == kKernel && g.kernel_w == kKernel && g.padding <= kKernel - 1 &&
         g.in_channels >= 64 && g.out_channels >= 64 && g.batch > 0 && g.out_height() >= 8 && g.out_width() >= 8;
}

void winograd_conv_forward(const Conv2dGeometry& g, const float* input, const float* weight, float* output) {
  const Tiling t{g.batch, g.in_channels, g.in_height, g.in_width, g.out_channels, g.padding};
  const int64_t in = g.in_channels;
  correlate(t, input, [&](float* U) {
    transform_weights(g.out_channels, in, [&](int64_t o, int64_t i, int ky, int kx) {
      return weight[((o * in + i) * kKernel + ky) * kKernel + kx];
    }, U);
  }, output);
}

void winograd_conv_backward_data(const Conv2dGeometry& g, const float* grad_output, const float* weight,
                                 float* grad_input) {
  // Output channel o of this correlation is input channel o of the layer.
  const Tiling t{g.batch, g.out_channels, g.out_height(), g.out_width(), g.in_channels, kKernel - 1 - g.padding};
  const int64_t in = g.in_channels;
  correlate(t, grad_output, [&](float* U) {
    transform_weights(g.in_channels, g.out_channels, [&](int64_t o, int64_t i, int ky, int kx) {
      return weight[((i * in + o) * kKernel + (kKernel - 1 - ky)) * kKernel + (kKernel - 1 - kx)];
    }, U);
  }, grad_input);
}

}  // namespace pixgrad::kernels::cpu
