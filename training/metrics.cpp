#include <pixgrad/training/metrics.h>

#include <cmath>
#include <limits>
#include <vector>

#include <pixgrad/core/error.h>

namespace pixgrad::training {

namespace {

// Host copies of both images on the [0, 255] scale, after checking they match.
struct Pair {
  std::vector<double> a, b;
  int64_t channels, height, width;
};

Pair to_pixels(const char* metric, const Tensor& prediction, const Tensor& target) {
  PIXGRAD_CHECK(prediction.defined() && target.defined() && prediction.shape() == target.shape() &&
                    prediction.dim() == 3,
                metric, ": images ", prediction.defined() ? shape_str(prediction.shape()) : "(undefined)", " and ",
                target.defined() ? shape_str(target.shape()) : "(undefined)", " must both be [C, H, W]");
  Pair pair{prediction.to_double_vector(), target.to_double_vector(), prediction.size(0), prediction.size(1),
            prediction.size(2)};
  for (double& v : pair.a) v = (std::min(std::max(v, -1.0), 1.0) + 1) * 127.5;
  for (double& v : pair.b) v = (std::min(std::max(v, -1.0), 1.0) + 1) * 127.5;
  return pair;
}

std::vector<double> gaussian_window(int size, double sigma) {
  std::vector<double> w(static_cast<size_t>(size));
  double total = 0;
  for (int i = 0; i < size; ++i) {
    const double d = i - (size - 1) / 2.0;
    w[static_cast<size_t>(i)] = std::exp(-d * d / (2 * sigma * sigma));
    total += w[static_cast<size_t>(i)];
  }
  for (double& v : w) v /= total;
  return w;
}

}  // namespace

double mean_absolute_error(const Tensor& prediction, const Tensor& target) {
  const std::vector<double> a = prediction.to_double_vector(), b = target.to_double_vector();
  PIXGRAD_CHECK(a.size() == b.size() && !a.empty(), "mean_absolute_error: shapes differ or are empty");
  double total = 0;
  for (size_t i = 0; i < a.size(); ++i) total += std::abs(a[i] - b[i]);
  return total / static_cast<double>(a.size());
}

double psnr(const Tensor& prediction, const Tensor& target) {
  const Pair p = to_pixels("psnr", prediction, target);
  double squared = 0;
  for (size_t i = 0; i < p.a.size(); ++i) squared += (p.a[i] - p.b[i]) * (p.a[i] - p.b[i]);
  const double mse = squared / static_cast<double>(p.a.size());
  if (mse == 0) return std::numeric_limits<double>::infinity();
  return 10 * std::log10(255.0 * 255.0 / mse);
}

double ssim(const Tensor& prediction, const Tensor& target) {
  const Pair p = to_pixels("ssim", prediction, target);
  constexpr int kWindow = 11;
  const double c1 = std::pow(0.01 * 255, 2), c2 = std::pow(0.03 * 255, 2);
  PIXGRAD_CHECK(p.height >= kWindow && p.width >= kWindow, "ssim: images of ", p.height, "x", p.width,
                " are smaller than the 11x11 window");
  const std::vector<double> w = gaussian_window(kWindow, 1.5);
  double total = 0;
  int64_t count = 0;
  for (int64_t c = 0; c < p.channels; ++c) {
    const double* a = p.a.data() + c * p.height * p.width;
    const double* b = p.b.data() + c * p.height * p.width;
    for (int64_t y = 0; y + kWindow <= p.height; ++y)
      for (int64_t x = 0; x + kWindow <= p.width; ++x) {
        double mean_a = 0, mean_b = 0, aa = 0, bb = 0, ab = 0;
        for (int i = 0; i < kWindow; ++i)
          for (int j = 0; j < kWindow; ++j) {
            const double weight = w[static_cast<size_t>(i)] * w[static_cast<size_t>(j)];
            const double va = a[(y + i) * p.width + x + j], vb = b[(y + i) * p.width + x + j];
            mean_a += weight * va;
            mean_b += weight * vb;
            aa += weight * va * va;
            bb += weight * vb * vb;
            ab += weight * va * vb;
          }
        const double var_a = aa - mean_a * mean_a, var_b = bb - mean_b * mean_b, cov = ab - mean_a * mean_b;
        total += ((2 * mean_a * mean_b + c1) * (2 * cov + c2)) /
                 ((mean_a * mean_a + mean_b * mean_b + c1) * (var_a + var_b + c2));
        ++count;
      }
  }
  return total / static_cast<double>(count);
}

}  // namespace pixgrad::training
