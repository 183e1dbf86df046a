// The one-launch Adam's layout (kernels/multi_tensor_adam.h) run on the host:
// every block and every thread of a launch is played in turn, with the same
// slot search, chunk walk and element arithmetic the CUDA kernel runs. The
// walk must visit every element of every tensor exactly once, in packs that
// stay aligned and inside their tensor, and the arithmetic must give the CPU
// reference's bits. (What the host cannot show: the kernel's launch itself,
// its loads and stores, and the device's rounding; tests/cuda compares those
// with the CPU on a GPU.)
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include <pixgrad/kernels/cpu/adam.h>
#include <pixgrad/kernels/multi_tensor_adam.h>

using namespace pixgrad::kernels;

namespace {

constexpr int64_t kChunk = kAdamChunk;

// Arrays with room for a shift of one float past a 16-byte boundary.
struct Arrays {
  std::vector<float> param, grad, exp_avg, exp_avg_sq;
};

// What a launch of `threads` threads per block does to each element: how
// often it is visited, and whether a pack broke the layout's rules.
struct Visits {
  std::vector<std::vector<int>> count;  // per slot, per element
  int64_t bad_packs = 0;                // misaligned, wider than allowed, or past the end
  int64_t bad_blocks = 0;               // mapped to a chunk its slot does not have
};

// Plays the launches adam_update_many makes for `slots`: one per table of
// adam_tables, each block searching its own launch's table.
Visits play_launch(const std::vector<AdamSlot>& slots, int threads) {
  Visits visits;
  for (const AdamSlot& slot : slots) visits.count.emplace_back(static_cast<size_t>(slot.n), 0);
  std::vector<int64_t> blocks;
  const std::vector<AdamTable> tables = adam_tables(slots, &blocks);
  for (size_t launch = 0; launch < tables.size(); ++launch) {
    const AdamTable& table = tables[launch];
    for (int64_t block = 0; block < blocks[launch]; ++block) {
      const int local = adam_slot_of_block(table.slots, table.count, block);
      const int s = static_cast<int>(launch) * kAdamTableSlots + local;  // the slot in `slots`
      const AdamSlot& slot = table.slots[local];
      const int64_t chunk = block - slot.first_block;
      if (chunk < 0 || chunk >= adam_chunks(slot.n) || slot.param != slots[static_cast<size_t>(s)].param) {
        ++visits.bad_blocks;
        continue;
      }
      for (int thread = 0; thread < threads; ++thread)
        adam_walk_chunk(slot, chunk, thread, threads, [&](int64_t index, int elements) {
          const bool pack_ok = (elements == 1 || (elements == slot.width && index % slot.width == 0)) &&
                               index >= 0 && index + elements <= slot.n &&
                               index / kChunk == (index + elements - 1) / kChunk;
          if (!pack_ok) ++visits.bad_packs;
          for (int k = 0; k < elements && index + k < slot.n; ++k)
            if (index + k >= 0) ++visits.count[static_cast<size_t>(s)][static_cast<size_t>(index + k)];
        });
    }
  }
  return visits;
}

std::vector<AdamTensor> tensors_of(std::vector<Arrays>& arrays, const std::vector<int64_t>& sizes,
                                   const std::vector<int>& shifts) {
  std::vector<AdamTensor> tensors;
  for (size_t i = 0; i < sizes.size(); ++i) {
    Arrays& a = arrays[i];
    const size_t s = static_cast<size_t>(shifts[i]);
    tensors.push_back({a.param.data() + s, a.grad.data() + s, a.exp_avg.data() + s, a.exp_avg_sq.data() + s, sizes[i]});
  }
  return tensors;
}

// Arrays for tensors of `sizes` elements, with room for a shift of one float.
// vector<float>'s storage is 16-byte aligned with glibc's allocator; shift 1 breaks it.
std::vector<Arrays> arrays_for(const std::vector<int64_t>& sizes) {
  std::vector<Arrays> arrays;
  for (const int64_t n : sizes) {
    const size_t room = static_cast<size_t>(n) + 8;
    arrays.push_back({std::vector<float>(room), std::vector<float>(room), std::vector<float>(room),
                      std::vector<float>(room)});
  }
  return arrays;
}

// Every block mapped to a chunk of its slot, every pack aligned and inside
// its tensor, every element visited once.
void check_each_element_once(const Visits& visits) {
  CHECK(visits.bad_blocks == 0);
  CHECK(visits.bad_packs == 0);
  int64_t wrong = 0;
  for (const std::vector<int>& counts : visits.count)
    for (const int count : counts) wrong += count != 1;
  CHECK(wrong == 0);
}

// Sizes around the chunk and the pack, a prime, and an empty tensor.
const std::vector<int64_t> kSizes = {1, 3, 4, 5, kChunk - 1, kChunk, kChunk + 1, 3 * kChunk + 7, 0, 100003, 8, 2};

}  // namespace

TEST_CASE("the one-launch Adam walk visits every element of every tensor once, in aligned packs inside it",
          "[optim][adam][multi_tensor]") {
  for (const int shift_pattern : {0, 1, 2}) {  // all aligned, all shifted, alternating
    std::vector<Arrays> arrays = arrays_for(kSizes);
    std::vector<int> shifts;
    for (size_t i = 0; i < kSizes.size(); ++i) shifts.push_back(shift_pattern == 2 ? static_cast<int>(i % 2) : shift_pattern);
    const std::vector<AdamSlot> slots = adam_slots(tensors_of(arrays, kSizes, shifts));
    REQUIRE(slots.size() == kSizes.size() - 1);  // the empty tensor has no slot
    for (const AdamSlot& slot : slots) {
      const bool aligned = reinterpret_cast<uintptr_t>(slot.param) % 16 == 0;
      CHECK(slot.width == (aligned ? 4 : 1));
    }
    for (const int threads : {256, 96, 1}) {
      INFO("shifts " << shift_pattern << ", " << threads << " threads per block");
      check_each_element_once(play_launch(slots, threads));
    }
  }
}

TEST_CASE("more tensors than one launch's table holds go in several launches, each element once",
          "[optim][adam][multi_tensor]") {
  // 150 tensors: three launches (64, 64, 22), sizes cycling around the pack and the chunk.
  std::vector<int64_t> sizes;
  for (int i = 0; i < 150; ++i) sizes.push_back(std::vector<int64_t>{1, 7, 4, kChunk + 3, 12}[i % 5]);
  std::vector<Arrays> arrays = arrays_for(sizes);
  std::vector<int> shifts;
  for (size_t i = 0; i < sizes.size(); ++i) shifts.push_back(static_cast<int>(i % 3 == 0));
  const std::vector<AdamSlot> slots = adam_slots(tensors_of(arrays, sizes, shifts));
  std::vector<int64_t> blocks;
  const std::vector<AdamTable> tables = adam_tables(slots, &blocks);
  REQUIRE(tables.size() == 3);
  CHECK(tables[0].count == kAdamTableSlots);
  CHECK(tables[2].count == 150 - 2 * kAdamTableSlots);
  int64_t total = 0;
  for (const int64_t b : blocks) total += b;
  CHECK(total == slots.back().first_block + adam_chunks(slots.back().n));  // no block lost or doubled
  for (const AdamTable& table : tables) CHECK(table.slots[0].first_block == 0);
  check_each_element_once(play_launch(slots, 64));
}

TEST_CASE("a block finds its slot as a linear search does", "[optim][adam][multi_tensor]") {
  std::vector<AdamSlot> slots;
  int64_t block = 0;
  for (const int64_t n : std::vector<int64_t>{kChunk, 1, 5 * kChunk, kChunk + 1, 2}) {
    slots.push_back({nullptr, nullptr, nullptr, nullptr, n, block, 1});
    block += adam_chunks(n);
  }
  for (int64_t b = 0; b < block; ++b) {
    int linear = 0;
    while (linear + 1 < static_cast<int>(slots.size()) && slots[static_cast<size_t>(linear) + 1].first_block <= b)
      ++linear;
    CHECK(adam_slot_of_block(slots.data(), static_cast<int>(slots.size()), b) == linear);
  }
}

TEST_CASE("the one-launch Adam's arithmetic, played on the host, gives the CPU reference's bits",
          "[optim][adam][multi_tensor]") {
  std::mt19937_64 random(Catch::rngSeed() + 17);
  std::uniform_real_distribution<float> values(-2, 2), small(-0.1f, 0.1f), positive(0, 0.01f);
  for (const auto placement : {EpsilonPlacement::PyTorch, EpsilonPlacement::Chainer}) {
    const AdamStep step{2e-4, 0.5, 0.999, 1e-8, 0.01, 7, placement};
    std::vector<Arrays> model(kSizes.size()), reference(kSizes.size());
    std::vector<int> shifts;
    for (size_t i = 0; i < kSizes.size(); ++i) {
      const size_t room = static_cast<size_t>(kSizes[i]) + 8;
      Arrays a{std::vector<float>(room), std::vector<float>(room), std::vector<float>(room), std::vector<float>(room)};
      for (size_t j = 0; j < room; ++j) {
        a.param[j] = values(random);
        // Gradients of mixed magnitudes, so that eps matters for some elements.
        a.grad[j] = j % 3 == 0 ? values(random) * 1e-6f : values(random);
        a.exp_avg[j] = small(random);
        a.exp_avg_sq[j] = positive(random);
      }
      model[i] = a;
      reference[i] = a;
      shifts.push_back(static_cast<int>(i % 2));
    }
    const std::vector<AdamSlot> slots = adam_slots(tensors_of(model, kSizes, shifts));
    const AdamScalars<float> s = adam_scalars<float>(step);
    const int64_t blocks = slots.back().first_block + adam_chunks(slots.back().n);
    for (int64_t block = 0; block < blocks; ++block) {
      const AdamSlot& slot = slots[static_cast<size_t>(adam_slot_of_block(slots.data(), static_cast<int>(slots.size()), block))];
      for (int thread = 0; thread < 256; ++thread)
        adam_walk_chunk(slot, block - slot.first_block, thread, 256, [&](int64_t index, int elements) {
          for (int k = 0; k < elements; ++k)
            adam_element(s, slot.param[index + k], slot.grad[index + k], slot.exp_avg[index + k],
                         slot.exp_avg_sq[index + k]);
        });
    }
    for (size_t i = 0; i < kSizes.size(); ++i) {
      Arrays& r = reference[i];
      const size_t shift = static_cast<size_t>(shifts[i]);
      cpu::adam_update_portable(cpu::host, step, r.param.data() + shift, r.grad.data() + shift,
                                r.exp_avg.data() + shift, r.exp_avg_sq.data() + shift, kSizes[i],
                                static_cast<float*>(nullptr));
      INFO("tensor " << i << " of " << kSizes[i] << " elements, placement " << static_cast<int>(placement));
      // Bit for bit, and nothing outside the tensor touched.
      CHECK(std::memcmp(model[i].param.data(), r.param.data(), r.param.size() * sizeof(float)) == 0);
      CHECK(std::memcmp(model[i].exp_avg.data(), r.exp_avg.data(), r.exp_avg.size() * sizeof(float)) == 0);
      CHECK(std::memcmp(model[i].exp_avg_sq.data(), r.exp_avg_sq.data(), r.exp_avg_sq.size() * sizeof(float)) == 0);
    }
  }
}
