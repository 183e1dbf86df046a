// What a normalisation kernel may do to each value it writes, so that
// "batch norm, then dropout, then an activation" is one pass over memory
// forward and one backward instead of three each:
//
//   forward    y = act(z * mask_i)      z the normalised value, i its index
//   backward   dz = act'(y) * dy * mask_i
//
// mask_i is dropout's (kernels/cpu/dropout.cpp): Philox uniform number i of
// (seed, offset) compared with float(p), kept values scaled by T(1 / (1 - p)).
// The backward draws it again instead of storing it, and reads act' from the
// output y: y > 0 exactly when act's input was > 0, for ReLU and for a leaky
// ReLU whose slope is >= 0 (core/ops/normalization.cpp runs an epilogue
// with a negative slope as separate ops instead). Each step is the unfused
// ops' own formula (kernels/elementwise_ops.h) in their order, so the fused
// op gives the unfused chain's bits.
#pragma once

#include <cstdint>

#include <pixgrad/kernels/elementwise_ops.h>
#include <pixgrad/kernels/philox.h>

namespace pixgrad::kernels {

enum class NormActivation { None, Relu, LeakyRelu };

struct NormEpilogue {
  NormActivation activation = NormActivation::None;
  double slope = 0;  // LeakyRelu's negative slope, >= 0
  bool dropout = false;
  float threshold = 0;    // float(p): a value is kept when its uniform number is >= threshold
  double keep_scale = 1;  // 1 / (1 - p), rounded to the tensor's type where used
  uint64_t seed = 0, offset = 0;
  // In a captured step (core/replay_values.h): where the kernels read the
  // shift to add to `offset` at each replay; nullptr otherwise.
  const uint64_t* offset_shift = nullptr;

  PIXGRAD_HOST_DEVICE bool identity() const { return activation == NormActivation::None && !dropout; }
  // The epilogue with the shift added to the offset: what a kernel uses,
  // read once when it starts (host memory for CPU kernels, device memory
  // for CUDA ones).
  PIXGRAD_HOST_DEVICE NormEpilogue resolved() const {
    NormEpilogue e = *this;
    if (e.offset_shift != nullptr) e.offset += *e.offset_shift;
    e.offset_shift = nullptr;
    return e;
  }
};

// Dropout's factor for element i: T(keep_scale) or 0.
// (philox::uniform's number i, its word picked by selects: indexing the
// block's words by a run-time value would put them in a GPU thread's stack.)
template <typename T>
PIXGRAD_HOST_DEVICE T epilogue_mask(const NormEpilogue& e, uint64_t i) {
  const philox::Block bits = philox::block(e.seed, e.offset + i / 4);
  const int k = static_cast<int>(i % 4);
  const uint32_t word = k == 0 ? bits.word[0] : k == 1 ? bits.word[1] : k == 2 ? bits.word[2] : bits.word[3];
  return philox::dropout_factor(word, e.threshold, static_cast<T>(e.keep_scale));
}

// The factors of elements 4j .. 4j + 3, from one Philox block (j = i / 4).
template <typename T>
PIXGRAD_HOST_DEVICE void epilogue_masks4(const NormEpilogue& e, uint64_t j, T (&masks)[4]) {
  const philox::Block bits = philox::block(e.seed, e.offset + j);
  for (int k = 0; k < 4; ++k)
    masks[k] = philox::dropout_factor(bits.word[k], e.threshold, static_cast<T>(e.keep_scale));
}

// The factors of pack j of W elements (elements W*j .. W*j + W - 1), W = 1 or
// 4: one Philox block serves an aligned pack of four. All 1 without dropout.
template <int W, typename T>
PIXGRAD_HOST_DEVICE void epilogue_pack_masks(const NormEpilogue& e, uint64_t j, T (&masks)[W]) {
  static_assert(W == 1 || W == 4, "packs of 1 or 4 elements");
  if (!e.dropout) {
    for (int k = 0; k < W; ++k) masks[k] = T(1);
  } else if constexpr (W == 4) {
    epilogue_masks4(e, j, masks);
  } else {
    masks[0] = epilogue_mask<T>(e, j);
  }
}

// y from z, given element i's dropout factor (1 when there is no dropout).
template <typename T>
PIXGRAD_HOST_DEVICE T epilogue_forward(const NormEpilogue& e, T z, T mask) {
  if (e.dropout) z = z * mask;
  switch (e.activation) {
    case NormActivation::Relu: return Relu::forward(z, T(0));
    case NormActivation::LeakyRelu: return LeakyRelu::forward(z, static_cast<T>(e.slope));
    case NormActivation::None: break;
  }
  return z;
}

// dz from dy and the forward's output y, given element i's dropout factor.
template <typename T>
PIXGRAD_HOST_DEVICE T epilogue_backward(const NormEpilogue& e, T y, T dy, T mask) {
  switch (e.activation) {
    case NormActivation::Relu: dy = Relu::backward(y, dy, T(0)); break;
    case NormActivation::LeakyRelu: dy = LeakyRelu::backward(y, dy, static_cast<T>(e.slope)); break;
    case NormActivation::None: break;
  }
  return e.dropout ? dy * mask : dy;
}

}  // namespace pixgrad::kernels
