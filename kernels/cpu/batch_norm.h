// Batch normalisation over [N, C, S] (S = H*W), per channel c.
#pragma once

#include <cstdint>

#include <pixgrad/kernels/channel_moments.h>
#include <pixgrad/kernels/device_tags.h>
#include <pixgrad/kernels/norm_epilogue.h>
#include <pixgrad/kernels/shapes.h>

namespace pixgrad::kernels::cpu {

// Training: normalises with the batch's mean and biased variance; writes them
// as mean[c] and invstd[c] = 1/sqrt(var + eps) for the backward pass, and
// unbiased_var[c] for the running-statistics update. weight/bias may be null.
// `epilogue` is applied to every y (kernels/norm_epilogue.h). With
// `moments` (x's records, kernels/channel_moments.h, counting each
// channel's values: batch_norm in core/ops.h checks that) the mean and
// variance come from them instead of two passes over x.
template <typename T>
void batch_norm_forward_training(Host, const BatchNormShape& s, const T* x, const T* weight, const T* bias, double eps,
                                 T* y, T* mean, T* invstd, T* unbiased_var, const NormEpilogue& epilogue = {},
                                 const GivenMoments& moments = {});

// Eval: normalises with given per-channel mean and invstd.
template <typename T>
void batch_norm_forward_inference(Host, const BatchNormShape& s, const T* x, const T* weight, const T* bias,
                                  const T* mean, const T* invstd, T* y, const NormEpilogue& epilogue = {});

// Gradients. With batch statistics (training) the mean and variance depend on
// x, which adds the two reduction terms; with fixed statistics they do not.
// grad_weight / grad_bias may be null when not needed. With an epilogue other
// than the identity, y is the forward's output, from which it is undone.
template <typename T>
void batch_norm_backward(Host, const BatchNormShape& s, const T* x, const T* grad_y, const T* weight, const T* mean,
                         const T* invstd, bool batch_statistics, T* grad_x, T* grad_weight, T* grad_bias,
                         const T* y = nullptr, const NormEpilogue& epilogue = {});

// running = (1 - momentum) * running + momentum * statistic, in T.
template <typename T>
void batch_norm_update_running(Host, int64_t channels, const T* mean, const T* unbiased_var, double momentum,
                               T* running_mean, T* running_var);
// mean = running_mean, invstd = T(1 / sqrt(double(running_var) + eps)).
template <typename T>
void batch_norm_statistics_from_running(Host, int64_t channels, const T* running_mean, const T* running_var,
                                        double eps, T* mean, T* invstd);

}  // namespace pixgrad::kernels::cpu
