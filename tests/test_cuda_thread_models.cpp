// The work of the CUDA kernels beside cuBLAS (im2col, col2im, the bias add)
// and of the handwritten convolution's bias gradient, played on the CPU: the
// same host-and-device functions the kernels call, run for every block and
// thread of the launches the launchers make, against references computed
// from the definitions in double. Odd shapes, strides, padding, and grids
// tall enough that blocks take several rows (grid-stride past 65535) are
// covered; the bias gradient's block program runs each thread up to the
// next barrier before the next thread starts, in ascending and in
// descending order, so that a missing barrier or a phase that depended on
// the threads' order would show.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <type_traits>
#include <vector>

#include <pixgrad/kernels/cuda/bias_gradient.h>
#include <pixgrad/kernels/cuda/col_threads.h>

using namespace pixgrad::kernels::cuda;

namespace {

constexpr float kUnwritten = std::numeric_limits<float>::quiet_NaN();
constexpr size_t kGuard = 64;  // values past the end that no thread may touch
// What the guards hold: a value no kernel writes (a NaN could be, copied
// from an unwritten or guard value).
constexpr float kGuardValue = -7.25e33f;
constexpr double kGuardDouble = -7.25e300;

std::vector<float> random_values(size_t n, uint32_t seed) {
  std::mt19937 engine(seed);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> values(n);
  for (float& v : values) v = uniform(engine);
  return values;
}

// A buffer of `n` values, unwritten, with a guard after them.
template <typename T = float>
std::vector<T> output_buffer(size_t n) {
  std::vector<T> buffer(n + kGuard, static_cast<T>(kUnwritten));
  std::fill(buffer.begin() + static_cast<std::ptrdiff_t>(n), buffer.end(),
            std::is_same_v<T, float> ? static_cast<T>(kGuardValue) : static_cast<T>(kGuardDouble));
  return buffer;
}

template <typename T>
bool guard_untouched(const std::vector<T>& buffer, size_t n) {
  const T guard = std::is_same_v<T, float> ? static_cast<T>(kGuardValue) : static_cast<T>(kGuardDouble);
  for (size_t i = n; i < buffer.size(); ++i)
    if (!(buffer[i] == guard)) return false;
  return true;
}

// Calls thread(column, block_y, grid_y) for every block and thread of a
// launch of col_grid(columns, rows).
template <typename Thread>
void play_col_launch(int64_t columns, int64_t rows, Thread&& thread) {
  const ColGrid grid = col_grid(columns, rows);
  for (unsigned int by = 0; by < grid.y; ++by)
    for (unsigned int bx = 0; bx < grid.x; ++bx)
      for (int t = 0; t < kColThreads; ++t)
        thread(static_cast<int>(bx) * kColThreads + t, static_cast<int>(by), static_cast<int>(grid.y));
}

struct ColCase {
  int images, channels, height, width, kernel_h, kernel_w, stride, padding;
  ColShape shape() const {
    return {channels, height, width, kernel_h, kernel_w, stride, padding, (height + 2 * padding - kernel_h) / stride + 1,
            (width + 2 * padding - kernel_w) / stride + 1};
  }
};

const std::vector<ColCase> kColCases = {
    {1, 3, 7, 5, 3, 3, 1, 1},     {2, 2, 9, 11, 4, 4, 2, 1},  {3, 1, 10, 7, 5, 3, 3, 2},
    {1, 4, 6, 6, 1, 1, 1, 0},     {2, 3, 5, 8, 2, 5, 2, 3},   {1, 2, 3, 3, 3, 3, 1, 0},
    {1, 2, 300, 1, 4, 1, 2, 1},   // more output pixels than a block's threads, in one column
    {1, 4100, 3, 3, 4, 4, 2, 1},  // 65600 col rows: blocks take a second row past 65535
};

// The value of col[row][p] by the definition: image (img), channel, tap
// (r, q) of output pixel (oh, ow), or 0 in the padding.
double col_definition(const ColShape& s, const std::vector<float>& image, int img, int c, int r, int q, int oh,
                      int ow) {
  const int ih = oh * s.stride - s.padding + r, iw = ow * s.stride - s.padding + q;
  if (ih < 0 || ih >= s.height || iw < 0 || iw >= s.width) return 0.0;
  return image[((static_cast<size_t>(img) * s.channels + c) * s.height + ih) * s.width + iw];
}

}  // namespace

TEST_CASE("im2col's threads write every col value once, as defined, and nothing past it", "[cuda_model][conv]") {
  for (const ColCase& k : kColCases) {
    const ColShape s = k.shape();
    INFO(k.images << " images of " << k.channels << "x" << k.height << "x" << k.width << ", kernel " << k.kernel_h
                  << "x" << k.kernel_w << " stride " << k.stride << " padding " << k.padding);
    const int taps = s.kernel_h * s.kernel_w, pixels = s.out_h * s.out_w, rows = k.images * s.channels * taps;
    const std::vector<float> image =
        random_values(static_cast<size_t>(k.images) * s.channels * s.height * s.width, 11);
    const size_t n = static_cast<size_t>(rows) * pixels;
    std::vector<float> col = output_buffer(n);
    play_col_launch(pixels, rows, [&](int p, int block_y, int grid_y) {
      im2col_thread(s, image.data(), rows, col.data(), p, block_y, grid_y);
    });
    int64_t wrong = 0;
    for (int img = 0; img < k.images; ++img)
      for (int c = 0; c < s.channels; ++c)
        for (int r = 0; r < s.kernel_h; ++r)
          for (int q = 0; q < s.kernel_w; ++q)
            for (int oh = 0; oh < s.out_h; ++oh)
              for (int ow = 0; ow < s.out_w; ++ow) {
                const size_t row = (static_cast<size_t>(img) * s.channels + c) * taps + r * s.kernel_w + q;
                const float got = col[row * pixels + oh * s.out_w + ow];
                wrong += !(got == col_definition(s, image, img, c, r, q, oh, ow));  // NaN if unwritten
              }
    CHECK(wrong == 0);
    CHECK(guard_untouched(col, n));
  }
}

TEST_CASE("col2im's threads sum, for every input value, the col values read from it", "[cuda_model][conv]") {
  for (const ColCase& k : kColCases) {
    const ColShape s = k.shape();
    INFO(k.images << " images of " << k.channels << "x" << k.height << "x" << k.width << ", kernel " << k.kernel_h
                  << "x" << k.kernel_w << " stride " << k.stride << " padding " << k.padding);
    const int taps = s.kernel_h * s.kernel_w, pixels = s.out_h * s.out_w, planes = k.images * s.channels;
    const std::vector<float> col = random_values(static_cast<size_t>(planes) * taps * pixels, 13);
    // The reference scatters each col value back to the input value it was read from.
    const size_t n = static_cast<size_t>(planes) * s.height * s.width;
    std::vector<double> sum(n, 0.0), magnitude(n, 0.0);
    for (int plane = 0; plane < planes; ++plane)
      for (int r = 0; r < s.kernel_h; ++r)
        for (int q = 0; q < s.kernel_w; ++q)
          for (int oh = 0; oh < s.out_h; ++oh)
            for (int ow = 0; ow < s.out_w; ++ow) {
              const int ih = oh * s.stride - s.padding + r, iw = ow * s.stride - s.padding + q;
              if (ih < 0 || ih >= s.height || iw < 0 || iw >= s.width) continue;
              const float v = col[(static_cast<size_t>(plane) * taps + r * s.kernel_w + q) * pixels + oh * s.out_w + ow];
              const size_t at = (static_cast<size_t>(plane) * s.height + ih) * s.width + iw;
              sum[at] += v;
              magnitude[at] += std::abs(v);
            }
    std::vector<float> image = output_buffer(n);
    play_col_launch(static_cast<int64_t>(s.height) * s.width, planes, [&](int pixel, int block_y, int grid_y) {
      col2im_thread(s, col.data(), planes, image.data(), pixel, block_y, grid_y);
    });
    // A float sum of at most `taps` terms: within taps float roundings of
    // the terms' magnitude.
    int64_t wrong = 0;
    for (size_t i = 0; i < n; ++i)
      wrong += !(std::abs(image[i] - sum[i]) <= taps * 6e-8 * magnitude[i]);  // NaN if unwritten
    CHECK(wrong == 0);
    CHECK(guard_untouched(image, n));
  }
}

TEST_CASE("the bias add's threads add each plane's channel bias once", "[cuda_model][conv]") {
  struct Case {
    int channels, pixels, planes;
  };
  for (const Case& k : {Case{3, 17, 6}, Case{5, 300, 5}, Case{2, 1, 70001}}) {
    INFO(k.planes << " planes of " << k.pixels << " pixels, " << k.channels << " channels");
    const size_t n = static_cast<size_t>(k.planes) * k.pixels;
    const std::vector<float> before = random_values(n, 17), bias = random_values(static_cast<size_t>(k.channels), 19);
    std::vector<float> output = before;
    output.resize(n + kGuard, kGuardValue);
    play_col_launch(k.pixels, k.planes, [&](int p, int block_y, int grid_y) {
      add_bias_thread(output.data(), bias.data(), k.channels, k.pixels, k.planes, p, block_y, grid_y);
    });
    int64_t wrong = 0;
    for (size_t i = 0; i < n; ++i)
      wrong += !(output[i] == before[i] + bias[(i / static_cast<size_t>(k.pixels)) % static_cast<size_t>(k.channels)]);
    CHECK(wrong == 0);
    CHECK(guard_untouched(output, n));
  }
}

TEST_CASE("the bias gradient's blocks and threads sum every channel over the batch and pixels", "[cuda_model][conv]") {
  struct Case {
    int batch, channels, pixels;
  };
  // The last case has more channels than the grid's 65535 rows of blocks;
  // played once (ascending, one SM), for time.
  for (const Case& k : {Case{1, 3, 5}, Case{2, 7, 1000}, Case{3, 2, 70001}, Case{1, 65537, 3}}) {
    const bool tall = k.channels > 65535;
    for (const int sm_count : {1, 132}) {
      for (const bool descending : {false, true}) {
        if (tall && (sm_count != 1 || descending)) continue;
        INFO("batch " << k.batch << ", " << k.channels << " channels of " << k.pixels << " pixels, " << sm_count
                      << " SMs, threads " << (descending ? "descending" : "ascending"));
        const std::vector<float> grad_output =
            random_values(static_cast<size_t>(k.batch) * k.channels * k.pixels, 23);
        const BiasPlan plan = plan_bias(k.channels, k.pixels, sm_count);
        REQUIRE(static_cast<int64_t>(plan.chunks) * plan.chunk >= k.pixels);
        const int grid_x = plan.chunks, grid_y = k.channels < 65535 ? k.channels : 65535;
        const size_t partials = static_cast<size_t>(k.channels) * plan.chunks;
        std::vector<double> partial = output_buffer<double>(partials);
        std::vector<double> lanes(kBiasThreads, std::numeric_limits<double>::quiet_NaN());
        // Threads run ahead to the next barrier: the steps between two
        // barriers are queued, and at the barrier each thread runs all of
        // them in turn before the next thread starts. A missing barrier then
        // lets a thread read what others have not written yet.
        std::vector<std::function<void(int)>> queued;
        const auto each = [&](auto&& step) { queued.emplace_back(step); };
        const auto barrier = [&] {
          for (int t = 0; t < kBiasThreads; ++t)
            for (const auto& step : queued) step(descending ? kBiasThreads - 1 - t : t);
          queued.clear();
        };
        int64_t blocks_ending_between_barriers = 0;
        for (int by = 0; by < grid_y; ++by)
          for (int bx = 0; bx < grid_x; ++bx) {
            bias_partial_block(grad_output.data(), k.batch, k.channels, k.pixels, plan.chunk, partial.data(),
                               lanes.data(), bx, grid_x, by, grid_y, each, barrier);
            blocks_ending_between_barriers += !queued.empty();
            barrier();
          }
        CHECK(blocks_ending_between_barriers == 0);
        std::vector<float> grad_bias = output_buffer(static_cast<size_t>(k.channels));
        const int finish_blocks = (k.channels + kBiasFinishThreads - 1) / kBiasFinishThreads;
        for (int c = 0; c < finish_blocks * kBiasFinishThreads; ++c)
          bias_finish_thread(partial.data(), k.channels, plan.chunks, grad_bias.data(), c);

        // Each partial against its chunk's sum in double (a different order
        // of double additions of floats: 1e-12 of the magnitude), each
        // gradient against the channel's sum rounded to float.
        int64_t wrong_partials = 0, wrong_sums = 0;
        for (int c = 0; c < k.channels; ++c) {
          double channel = 0.0;
          for (int x = 0; x < plan.chunks; ++x) {
            double sum = 0.0, magnitude = 0.0;
            for (int b = 0; b < k.batch; ++b)
              for (int i = x * plan.chunk; i < std::min(k.pixels, (x + 1) * plan.chunk); ++i) {
                const double v = grad_output[(static_cast<size_t>(b) * k.channels + c) * k.pixels + i];
                sum += v;
                magnitude += std::abs(v);
              }
            const double got = partial[static_cast<size_t>(c) * plan.chunks + x];
            wrong_partials += !(std::abs(got - sum) <= 1e-12 * magnitude);
            channel += sum;
          }
          const float expected = static_cast<float>(channel), got = grad_bias[static_cast<size_t>(c)];
          wrong_sums += !(got == expected || std::abs(got - expected) <= 1.2e-7f * std::abs(expected));
        }
        CHECK(wrong_partials == 0);
        CHECK(wrong_sums == 0);
        CHECK(guard_untouched(partial, partials));
        CHECK(guard_untouched(grad_bias, static_cast<size_t>(k.channels)));
      }
    }
  }
}
