// Batch normalisation on CUDA over [N, C, S], the device twin of
// kernels/cpu/batch_norm.h (same outputs, same meaning of mean / invstd /
// unbiased_var). Two implementations: handwritten kernels (the default) and
// cuDNN's CUDNN_BATCHNORM_SPATIAL, chosen with set_batch_norm_impl() or, at
// first use, the environment variable PIXGRAD_BN_IMPL=handwritten|cudnn.
// Calls cuDNN cannot serve (see batch_norm.cu) use the handwritten kernels.
#pragma once

#include <cstdint>

#include <pixgrad/kernels/channel_moments.h>
#include <pixgrad/kernels/device_tags.h>
#include <pixgrad/kernels/norm_epilogue.h>
#include <pixgrad/kernels/shapes.h>

namespace pixgrad::kernels::cuda {

enum class BatchNormImpl { Handwritten, Cudnn };
BatchNormImpl batch_norm_impl();
void set_batch_norm_impl(BatchNormImpl impl);

// weight/bias may be null (no affine). Writes y and, per channel, the batch
// mean, invstd = 1/sqrt(biased var + eps) and the unbiased variance. An
// epilogue (kernels/norm_epilogue.h) other than the identity always takes
// the handwritten kernels: cuDNN's cannot apply it. With `moments` (x's, as
// the kernel that wrote x left them: kernels/channel_moments.h) the
// handwritten kernels take the statistics from them, in one short launch,
// instead of two passes over x.
void batch_norm_forward_training(Gpu, const BatchNormShape& s, const float* x, const float* weight, const float* bias,
                                 double eps, float* y, float* mean, float* invstd, float* unbiased_var,
                                 const NormEpilogue& epilogue = {}, const GivenMoments& moments = {});
void batch_norm_forward_inference(Gpu, const BatchNormShape& s, const float* x, const float* weight,
                                  const float* bias, const float* mean, const float* invstd, float* y,
                                  const NormEpilogue& epilogue = {});
// Any of grad_x, grad_weight, grad_bias may be null; y (the forward's
// output) is needed with an epilogue other than the identity.
void batch_norm_backward(Gpu, const BatchNormShape& s, const float* x, const float* grad_y, const float* weight,
                         const float* mean, const float* invstd, bool batch_statistics, float* grad_x,
                         float* grad_weight, float* grad_bias, const float* y = nullptr,
                         const NormEpilogue& epilogue = {});

// running = (1 - momentum) * running + momentum * statistic, in float as on the CPU.
void batch_norm_update_running(Gpu, int64_t channels, const float* mean, const float* unbiased_var, double momentum,
                               float* running_mean, float* running_var);
// mean = running_mean, invstd = float(1 / sqrt(double(running_var) + eps)).
void batch_norm_statistics_from_running(Gpu, int64_t channels, const float* running_mean, const float* running_var,
                                        double eps, float* mean, float* invstd);

}  // namespace pixgrad::kernels::cuda
