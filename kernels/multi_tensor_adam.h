// Adam over many tensors in one launch: the layout of that launch and the
// arithmetic of one element, written once for both the CUDA kernel
// (kernels/cuda/optim.cu) and the host model that tests it
// (tests/test_multi_tensor_adam.cpp).
//
// A launch takes a table of slots, one per tensor. Each tensor is cut into
// chunks of kAdamChunk elements and each chunk is one block; a slot records
// its tensor's first block, so a block finds its slot by a binary search over
// the table. Within the chunk, thread t takes the packs t, t + threads, ...
// of `width` elements (4 when every array of the tensor is 16-byte aligned,
// else 1); the chunk size is a multiple of 4, so a pack never straddles two
// chunks and stays aligned, and the tensor's last elements past the final
// whole pack go one by one.
//
// One launch instead of one per tensor (about a hundred for pix2pix): the
// launch overhead, not the memory traffic, dominates the small tensors.
#pragma once

#include <cstdint>
#include <vector>

#include <pixgrad/kernels/alignment.h>
#include <pixgrad/kernels/elementwise_ops.h>
#include <pixgrad/kernels/optimizer_steps.h>

namespace pixgrad::kernels {

// Elements per block: large enough that a block's launch and table lookup
// are small against its memory traffic (16 KiB x 4 arrays x 4 bytes).
constexpr int64_t kAdamChunk = 16384;

struct AdamSlot {
  float* param;
  const float* grad;
  float* exp_avg;
  float* exp_avg_sq;
  int64_t n;            // elements, at least 1
  int64_t first_block;  // the block of the tensor's first chunk
  int width;            // 4 (every array 16-byte aligned) or 1
};

// One tensor's arrays, as a caller hands them over.
struct AdamTensor {
  float* param;
  const float* grad;
  float* exp_avg;
  float* exp_avg_sq;
  int64_t n;
};

// Host only: how many elements a thread updates at once, 4 when every array
// of the tensor is 16-byte aligned, else 1.
inline int adam_pack_width(const AdamTensor& t) {
  return aligned16(t.param) && aligned16(t.grad) && aligned16(t.exp_avg) && aligned16(t.exp_avg_sq) ? 4 : 1;
}

PIXGRAD_HOST_DEVICE int64_t adam_chunks(int64_t n) { return (n + kAdamChunk - 1) / kAdamChunk; }

// The slot whose chunks include `block`: the last slot with first_block <= block.
PIXGRAD_HOST_DEVICE int adam_slot_of_block(const AdamSlot* slots, int count, int64_t block) {
  int low = 0, high = count - 1;
  while (low < high) {
    const int middle = (low + high + 1) / 2;
    if (slots[middle].first_block <= block) low = middle;
    else high = middle - 1;
  }
  return low;
}

// Host only: the table of a launch, the empty tensors left out.
inline std::vector<AdamSlot> adam_slots(const std::vector<AdamTensor>& tensors) {
  std::vector<AdamSlot> slots;
  int64_t block = 0;
  for (const AdamTensor& t : tensors) {
    if (t.n <= 0) continue;
    slots.push_back({t.param, t.grad, t.exp_avg, t.exp_avg_sq, t.n, block, adam_pack_width(t)});
    block += adam_chunks(t.n);
  }
  return slots;
}

// What one launch takes by value, as a kernel argument: up to kAdamTableSlots
// slots, their blocks counted from this launch's first. By value rather than
// copied to the device: a captured step (core/cuda_graph.h) keeps a launch's
// arguments, where a copy from host memory would read that memory again at
// every replay. The table stays under the 4 KiB every device accepts.
constexpr int kAdamTableSlots = 64;

struct AdamTable {
  AdamSlot slots[kAdamTableSlots];
  int count;
};

// Host only: the launches for `slots` (from adam_slots), in order, each
// table's first_block rebased to its launch; blocks[i] is launch i's grid.
inline std::vector<AdamTable> adam_tables(const std::vector<AdamSlot>& slots, std::vector<int64_t>* blocks) {
  std::vector<AdamTable> tables;
  blocks->clear();
  for (size_t first = 0; first < slots.size(); first += kAdamTableSlots) {
    AdamTable table{};
    const int64_t base = slots[first].first_block;
    int64_t end = base;
    for (size_t i = first; i < slots.size() && i < first + kAdamTableSlots; ++i) {
      table.slots[table.count] = slots[i];
      table.slots[table.count].first_block -= base;
      ++table.count;
      end = slots[i].first_block + adam_chunks(slots[i].n);
    }
    tables.push_back(table);
    blocks->push_back(end - base);
  }
  return tables;
}

// Calls visit(index, elements) for each pack thread `thread` of `threads`
// updates in chunk `chunk` of a slot: `elements` is the slot's width, or 1
// for each element after the last whole pack.
template <typename Visit>
PIXGRAD_HOST_DEVICE void adam_walk_chunk(const AdamSlot& slot, int64_t chunk, int thread, int threads, Visit&& visit) {
  const int64_t begin = chunk * kAdamChunk;
  const int64_t end = begin + kAdamChunk < slot.n ? begin + kAdamChunk : slot.n;
  const int64_t width = slot.width;
  const int64_t whole = begin + (end - begin) / width * width;  // end of the whole packs
  for (int64_t index = begin + thread * width; index < whole; index += static_cast<int64_t>(threads) * width)
    visit(index, static_cast<int>(width));
  for (int64_t index = whole + thread; index < end; index += threads) visit(index, 1);
}

// One element: with g = grad + decay * p,
//   m = beta1 m + (1 - beta1) g,  v = beta2 v + (1 - beta2) g g,
//   p -= step_size m / (sqrt(v) v_scale + eps).
// Every product goes through mul_exact, so nvcc forms no FMA, and the square
// root and division are IEEE-rounded whatever -prec-sqrt and -prec-div say
// (--use_fast_math turns both off): the GPU gives the CPU reference's bits.
PIXGRAD_HOST_DEVICE void adam_element(const AdamScalars<float>& s, float& p, float grad, float& m, float& v) {
  using math::mul_exact;
  const float g = grad + mul_exact(s.decay, p);
  m = mul_exact(s.beta1, m) + mul_exact(s.one_minus_beta1, g);
  v = mul_exact(s.beta2, v) + mul_exact(mul_exact(s.one_minus_beta2, g), g);
  const float denominator = mul_exact(math::sqrt_exact(v), s.v_scale) + s.eps;
  p = p - math::div_exact(mul_exact(s.step_size, m), denominator);
}

}  // namespace pixgrad::kernels
