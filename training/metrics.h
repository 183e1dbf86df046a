// Image-quality metrics for evaluating a generator against ground truth.
// Inputs are [C, H, W] tensors in [-1, 1] (the generator's range); PSNR and
// SSIM are computed on the 8-bit scale [0, 255], as image tools report them.
#pragma once

#include <pixgrad/core/tensor.h>

namespace pixgrad::training {

double mean_absolute_error(const Tensor& prediction, const Tensor& target);
// 10 log10(255^2 / MSE); infinite for identical images.
double psnr(const Tensor& prediction, const Tensor& target);
// Wang et al. 2004: 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03,
// averaged over valid window positions and channels.
double ssim(const Tensor& prediction, const Tensor& target);

}  // namespace pixgrad::training
