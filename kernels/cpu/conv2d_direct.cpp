#include <pixgrad/kernels/cpu/conv2d_direct.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include <immintrin.h>

namespace pixgrad::kernels::cpu {
namespace {

#define PIXGRAD_AVX2_FMA __attribute__((target("avx2,fma")))

constexpr int64_t kLanes = 8;
// Output rows per task: enough tasks for two cores on a 31-row output, and a
// slab (channels x (rows + kernel - 1) rows) that stays within L2 for 512
// channels of 40 floats.
constexpr int64_t kBandRows = 4;

int64_t round_up(int64_t value, int64_t multiple) { return (value + multiple - 1) / multiple * multiple; }

thread_local std::vector<float> tls_slab;

float* slab_buffer(int64_t count) {
  if (static_cast<int64_t>(tls_slab.size()) < count) tls_slab.resize(static_cast<size_t>(count));
  return tls_slab.data();
}

// A stride-1 correlation of `batch` images [in_channels, height, width] with
// weight [out_channels, in_channels, K, K], zero padding `pad`:
//   out[co][oy][ox] = sum over ci, ky, kx of w[co][ci][ky][kx] in[ci][oy+ky-pad][ox+kx-pad].
struct Correlation {
  int64_t batch, in_channels, height, width, out_channels, pad, kernel;
  int64_t out_height() const { return height + 2 * pad - kernel + 1; }
  int64_t out_width() const { return width + 2 * pad - kernel + 1; }
  // Output columns rounded up to whole vectors; the slab is that wide plus
  // the kernel's reach, so every vector load of the inner loop is in bounds.
  int64_t vector_width() const { return round_up(out_width(), kLanes); }
  int64_t slab_width() const { return round_up(vector_width() + kernel - 1, kLanes); }
};

// Copies rows [first_row, first_row + rows) of the zero-bordered image (row r
// is image row r - pad, column c is image column c - pad) of every channel
// into slab[channel][row][slab_width].
void fill_slab(const Correlation& c, const float* image, int64_t first_row, int64_t rows, float* slab) {
  const int64_t width = c.slab_width();
  for (int64_t channel = 0; channel < c.in_channels; ++channel) {
    for (int64_t r = 0; r < rows; ++r) {
      float* destination = slab + (channel * rows + r) * width;
      const int64_t image_row = first_row + r - c.pad;
      std::fill(destination, destination + width, 0.0f);
      if (image_row < 0 || image_row >= c.height) continue;
      std::memcpy(destination + c.pad, image + (channel * c.height + image_row) * c.width,
                  static_cast<size_t>(c.width) * sizeof(float));
    }
  }
}

// One tile of the output: channels [co, co + CB) of output row `row` (within
// the slab's band), columns [ox, ox + 8 V), all held in registers over every
// input channel and kernel tap. Columns past the output width are computed on
// the zero border and not stored.
template <int K, int CB, int V>
PIXGRAD_AVX2_FMA void correlate_tile(const Correlation& c, const float* slab, int64_t slab_rows, const float* weight,
                                     int64_t co, int64_t row, int64_t ox, float* const* out_rows) {
  __m256 acc[CB][V];
  for (int b = 0; b < CB; ++b)
    for (int v = 0; v < V; ++v) acc[b][v] = _mm256_setzero_ps();
  const int64_t width = c.slab_width(), channel_stride = c.in_channels * K * K;
  for (int64_t ci = 0; ci < c.in_channels; ++ci) {
    for (int ky = 0; ky < K; ++ky) {
      const float* source = slab + (ci * slab_rows + row + ky) * width + ox;
      const float* taps = weight + ((co * c.in_channels + ci) * K + ky) * K;
      for (int kx = 0; kx < K; ++kx) {
        __m256 x[V];
        for (int v = 0; v < V; ++v) x[v] = _mm256_loadu_ps(source + kx + v * kLanes);
        for (int b = 0; b < CB; ++b) {
          const __m256 w = _mm256_broadcast_ss(taps + b * channel_stride + kx);
          for (int v = 0; v < V; ++v) acc[b][v] = _mm256_fmadd_ps(w, x[v], acc[b][v]);
        }
      }
    }
  }
  const int64_t out_width = c.out_width();
  for (int b = 0; b < CB; ++b) {
    for (int v = 0; v < V; ++v) {
      const int64_t column = ox + v * kLanes;
      if (column + kLanes <= out_width) {
        _mm256_storeu_ps(out_rows[b] + column, acc[b][v]);
      } else if (column < out_width) {
        alignas(32) float lanes[kLanes];
        _mm256_store_ps(lanes, acc[b][v]);
        std::memcpy(out_rows[b] + column, lanes, static_cast<size_t>(out_width - column) * sizeof(float));
      }
    }
  }
}

// Registers: CB x V accumulators and V loaded vectors, at most 15 of 16.
template <int CB>
constexpr int kTileVectors = CB == 1 ? 6 : CB == 2 ? 4 : 3;

// A tile of `vectors` (< V) vectors, chosen at compile time.
template <int K, int CB, int MaxVectors>
void correlate_tail(const Correlation& c, const float* slab, int64_t slab_rows, const float* weight, int64_t co,
                    int64_t row, int64_t ox, float* const* out_rows, int64_t vectors) {
  if constexpr (MaxVectors > 0) {
    if (vectors == MaxVectors) return correlate_tile<K, CB, MaxVectors>(c, slab, slab_rows, weight, co, row, ox, out_rows);
    correlate_tail<K, CB, MaxVectors - 1>(c, slab, slab_rows, weight, co, row, ox, out_rows, vectors);
  }
}

// Every output row of one band of one image, CB output channels at a time.
template <int K, int CB>
void correlate_rows(const Correlation& c, const float* slab, int64_t slab_rows, const float* weight, int64_t co,
                    int64_t rows, float* out_image, int64_t first_row) {
  constexpr int V = kTileVectors<CB>;
  const int64_t out_height = c.out_height(), out_width = c.out_width(), vector_width = c.vector_width();
  for (int64_t row = 0; row < rows; ++row) {
    float* out_rows[CB];
    for (int b = 0; b < CB; ++b) out_rows[b] = out_image + ((co + b) * out_height + first_row + row) * out_width;
    int64_t ox = 0;
    for (; ox + V * kLanes <= vector_width; ox += V * kLanes)
      correlate_tile<K, CB, V>(c, slab, slab_rows, weight, co, row, ox, out_rows);
    // The rest in one narrower tile: its vectors are independent chains of
    // multiply-adds, where one vector at a time would wait on each result.
    correlate_tail<K, CB, V - 1>(c, slab, slab_rows, weight, co, row, ox, out_rows, (vector_width - ox) / kLanes);
  }
}

template <int K>
void correlate(const Correlation& c, const float* input, const float* weight, float* output) {
  const int64_t out_height = c.out_height();
  const int64_t bands = (out_height + kBandRows - 1) / kBandRows, tasks = c.batch * bands;
  const int64_t in_size = c.in_channels * c.height * c.width, out_size = c.out_channels * out_height * c.out_width();
#pragma omp parallel for schedule(dynamic, 1) if (tasks > 1)
  for (int64_t task = 0; task < tasks; ++task) {
    const int64_t image = task / bands, first_row = (task % bands) * kBandRows;
    const int64_t rows = std::min(kBandRows, out_height - first_row), slab_rows = rows + K - 1;
    float* slab = slab_buffer(c.in_channels * slab_rows * c.slab_width());
    fill_slab(c, input + image * in_size, first_row, slab_rows, slab);
    float* out_image = output + image * out_size;
    for (int64_t co = 0; co < c.out_channels; co += 4) {
      switch (std::min<int64_t>(4, c.out_channels - co)) {
        case 1: correlate_rows<K, 1>(c, slab, slab_rows, weight, co, rows, out_image, first_row); break;
        case 2: correlate_rows<K, 2>(c, slab, slab_rows, weight, co, rows, out_image, first_row); break;
        case 3: correlate_rows<K, 3>(c, slab, slab_rows, weight, co, rows, out_image, first_row); break;
        default: correlate_rows<K, 4>(c, slab, slab_rows, weight, co, rows, out_image, first_row); break;
      }
    }
  }
}

void correlate_any(const Correlation& c, const float* input, const float* weight, float* output) {
  if (c.kernel == 3) correlate<3>(c, input, weight, output);
  else correlate<4>(c, input, weight, output);
}

PIXGRAD_AVX2_FMA float horizontal_sum(__m256 v) {
  const __m128 pair = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 quad = _mm_add_ps(pair, _mm_movehl_ps(pair, pair));
  return _mm_cvtss_f32(_mm_add_ss(quad, _mm_shuffle_ps(quad, quad, 1)));
}

// Adds to grad_weight[co + b][ci][ky][kx], for b < CB and every kx, the sum
// over the plane of grad_output[co + b] times the input plane `plane` (one
// channel, zero-bordered, slab layout) shifted by (ky, kx).
template <int K, int CB>
PIXGRAD_AVX2_FMA void weight_taps(const Correlation& c, const float* plane, const float* padded_grad, int64_t co,
                                  int64_t ci, int ky, float* grad_weight) {
  const int64_t out_height = c.out_height(), vector_width = c.vector_width(), width = c.slab_width();
  __m256 acc[CB][K];
  for (int b = 0; b < CB; ++b)
    for (int kx = 0; kx < K; ++kx) acc[b][kx] = _mm256_setzero_ps();
  for (int64_t oy = 0; oy < out_height; ++oy) {
    const float* source = plane + (oy + ky) * width;
    const float* gradient = padded_grad + (co * out_height + oy) * vector_width;
    for (int64_t ox = 0; ox < vector_width; ox += kLanes) {
      __m256 dy[CB];
      for (int b = 0; b < CB; ++b) dy[b] = _mm256_loadu_ps(gradient + b * out_height * vector_width + ox);
      for (int kx = 0; kx < K; ++kx) {
        const __m256 x = _mm256_loadu_ps(source + ox + kx);
        for (int b = 0; b < CB; ++b) acc[b][kx] = _mm256_fmadd_ps(dy[b], x, acc[b][kx]);
      }
    }
  }
  for (int b = 0; b < CB; ++b)
    for (int kx = 0; kx < K; ++kx)
      grad_weight[(((co + b) * c.in_channels + ci) * K + ky) * K + kx] += horizontal_sum(acc[b][kx]);
}

// CB x K accumulators, CB gradient vectors and one input vector in registers.
template <int K>
constexpr int kWeightChannels = K == 3 ? 4 : 3;

template <int K>
void weight_gradient(const Correlation& c, const float* input, const float* padded_grad, float* grad_weight) {
  constexpr int CB = kWeightChannels<K>;
  const int64_t out_height = c.out_height(), vector_width = c.vector_width();
  const int64_t in_size = c.in_channels * c.height * c.width;
  const int64_t grad_size = c.out_channels * out_height * vector_width;
  std::fill(grad_weight, grad_weight + c.out_channels * c.in_channels * K * K, 0.0f);
  // Threads own input channels, so each writes its own weight entries.
#pragma omp parallel for schedule(dynamic, 1) if (c.in_channels > 1)
  for (int64_t ci = 0; ci < c.in_channels; ++ci) {
    const int64_t plane_rows = out_height + K - 1;
    float* plane = slab_buffer(plane_rows * c.slab_width());
    for (int64_t image = 0; image < c.batch; ++image) {
      const Correlation one_channel{1, 1, c.height, c.width, c.out_channels, c.pad, K};
      fill_slab(one_channel, input + image * in_size + ci * c.height * c.width, 0, plane_rows, plane);
      const float* grad = padded_grad + image * grad_size;
      for (int ky = 0; ky < K; ++ky) {
        for (int64_t co = 0; co < c.out_channels; co += CB) {
          switch (std::min<int64_t>(CB, c.out_channels - co)) {
            case 1: weight_taps<K, 1>(c, plane, grad, co, ci, ky, grad_weight); break;
            case 2: weight_taps<K, 2>(c, plane, grad, co, ci, ky, grad_weight); break;
            case 3: weight_taps<K, 3>(c, plane, grad, co, ci, ky, grad_weight); break;
            default: weight_taps<K, CB>(c, plane, grad, co, ci, ky, grad_weight); break;
          }
        }
      }
    }
  }
}

Correlation forward_correlation(const Conv2dGeometry& g) {
  return {g.batch, g.in_channels, g.in_height, g.in_width, g.out_channels, g.padding, g.kernel_h};
}

}  // namespace

bool direct_conv_applies(const Conv2dGeometry& g) {
  static const bool cpu_ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return cpu_ok && g.stride == 1 && g.kernel_h == g.kernel_w && (g.kernel_h == 3 || g.kernel_h == 4) &&
         g.padding < g.kernel_h && g.out_channels <= kDirectMaxOutChannels && g.batch > 0;
}

void direct_conv_forward(const Conv2dGeometry& g, const float* input, const float* weight, float* output) {
  correlate_any(forward_correlation(g), input, weight, output);
}

void direct_conv_backward_data(const Conv2dGeometry& g, const float* grad_output, const float* weight,
                               float* grad_input) {
  // dx is the correlation of dy with the weight turned half a circle and its
  // channel axes swapped: w'[ci][co][ky][kx] = w[co][ci][K-1-ky][K-1-kx].
  const int64_t k = g.kernel_h, taps = k * k;
  std::vector<float> turned(static_cast<size_t>(g.in_channels * g.out_channels * taps));
  for (int64_t co = 0; co < g.out_channels; ++co)
    for (int64_t ci = 0; ci < g.in_channels; ++ci)
      for (int64_t t = 0; t < taps; ++t)
        turned[static_cast<size_t>((ci * g.out_channels + co) * taps + t)] =
            weight[(co * g.in_channels + ci) * taps + (taps - 1 - t)];
  const Correlation c{g.batch, g.out_channels, g.out_height(), g.out_width(), g.in_channels, k - 1 - g.padding, k};
  correlate_any(c, grad_output, turned.data(), grad_input);
}

void direct_conv_backward_weight(const Conv2dGeometry& g, const float* input, const float* grad_output,
                                 float* grad_weight) {
  const Correlation c = forward_correlation(g);
  // dy with each row padded with zeros to whole vectors, so that the extra
  // columns of the vector loop add nothing.
  const int64_t out_height = c.out_height(), out_width = c.out_width(), vector_width = c.vector_width();
  std::vector<float> padded(static_cast<size_t>(c.batch * c.out_channels * out_height * vector_width), 0.0f);
  for (int64_t row = 0; row < c.batch * c.out_channels * out_height; ++row)
    std::memcpy(padded.data() + row * vector_width, grad_output + row * out_width,
                static_cast<size_t>(out_width) * sizeof(float));
  if (c.kernel == 3) weight_gradient<3>(c, input, padded.data(), grad_weight);
  else weight_gradient<4>(c, input, padded.data(), grad_weight);
}

}  // namespace pixgrad::kernels::cpu
