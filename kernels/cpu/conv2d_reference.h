// Direct-loop convolution: the plain definition, in any floating type. It is
// the float64 path (finite-difference gradient checks run in double) and the
// yardstick the fast float kernels in conv2d.h are tested against.
#pragma once

#include <pixgrad/kernels/shapes.h>

namespace pixgrad::kernels::cpu {

template <typename T>
void conv2d_forward_reference(const Conv2dGeometry& g, const T* input, const T* weight, const T* bias, T* output);
template <typename T>
void conv2d_backward_data_reference(const Conv2dGeometry& g, const T* grad_output, const T* weight, T* grad_input);
template <typename T>
void conv2d_backward_weight_reference(const Conv2dGeometry& g, const T* input, const T* grad_output, T* grad_weight,
                                      T* grad_bias);

}  // namespace pixgrad::kernels::cpu
