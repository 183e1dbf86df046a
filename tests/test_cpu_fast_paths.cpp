// The CPU step's shortcuts against the plain code they replace: the AVX2 Adam
// update against the portable loop (bit for bit), the host block cache's
// reuse, and gradients adopted instead of copied never aliasing each other.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include <pixgrad/core/autograd.h>
#include <pixgrad/core/host_block_cache.h>
#include <pixgrad/core/ops.h>
#include <pixgrad/kernels/cpu/adam.h>
#include <pixgrad/models/pix2pix.h>
#include "graph_replay_case.h"

using namespace pixgrad;

namespace {

struct AdamBuffers {
  std::vector<float> param, grad, exp_avg, exp_avg_sq;
};

AdamBuffers random_buffers(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uniform(0.0f, 1e-3f);
  AdamBuffers b;
  for (int64_t i = 0; i < n; ++i) {
    b.param.push_back(normal(rng));
    b.grad.push_back(normal(rng) * 1e-2f);
    b.exp_avg.push_back(normal(rng) * 1e-3f);
    b.exp_avg_sq.push_back(uniform(rng));
  }
  return b;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b, size_t from) {
  return std::memcmp(a.data() + from, b.data() + from, (a.size() - from) * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("the CPU Adam update equals the portable loop bit for bit", "[optim][adam][simd]") {
  // Lengths around the 8-wide vectors and the threading threshold; offsets
  // 0..3 start the arrays off the vector alignment.
  for (const int64_t n : {int64_t{1}, int64_t{7}, int64_t{8}, int64_t{67}, int64_t{40001}, int64_t{100003}}) {
    for (const size_t offset : {size_t{0}, size_t{3}}) {
      for (const auto placement : {kernels::EpsilonPlacement::PyTorch, kernels::EpsilonPlacement::Chainer}) {
        const kernels::AdamStep step{2e-4, 0.5, 0.999, 1e-8, placement == kernels::EpsilonPlacement::Chainer ? 0.0 : 1e-2,
                                     3, placement};
        AdamBuffers fast = random_buffers(n + static_cast<int64_t>(offset), static_cast<uint32_t>(n));
        AdamBuffers plain = fast;
        float fast_flag = 0, plain_flag = 0;
        kernels::cpu::adam_update(kernels::cpu::Host{}, step, fast.param.data() + offset, fast.grad.data() + offset,
                                  fast.exp_avg.data() + offset, fast.exp_avg_sq.data() + offset, n, &fast_flag);
        kernels::cpu::adam_update_portable(kernels::cpu::Host{}, step, plain.param.data() + offset,
                                           plain.grad.data() + offset, plain.exp_avg.data() + offset,
                                           plain.exp_avg_sq.data() + offset, n, &plain_flag);
        INFO("n " << n << ", offset " << offset);
        CHECK(same_bits(fast.param, plain.param, 0));
        CHECK(same_bits(fast.exp_avg, plain.exp_avg, 0));
        CHECK(same_bits(fast.exp_avg_sq, plain.exp_avg_sq, 0));
        CHECK(fast_flag == 0);
        CHECK(plain_flag == 0);
        // The update moved every parameter: the comparison is not of two no-ops.
        CHECK_FALSE(same_bits(fast.param, random_buffers(n + static_cast<int64_t>(offset), static_cast<uint32_t>(n)).param,
                              offset + static_cast<size_t>(n) - 1));
      }
    }
  }
}

TEST_CASE("the CPU Adam update flags a NaN or infinity in any lane and in the tail", "[optim][adam][simd]") {
  const kernels::AdamStep step{2e-4, 0.5, 0.999, 1e-8, 0.0, 1, kernels::EpsilonPlacement::PyTorch};
  const int64_t n = 50001;  // threaded, with a 1-element tail
  for (const int64_t bad : {int64_t{0}, int64_t{5}, int64_t{25003}, n - 1}) {
    for (const float value : {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::infinity()}) {
      AdamBuffers b = random_buffers(n, 7);
      b.grad[static_cast<size_t>(bad)] = value;
      float flag = 0;
      kernels::cpu::adam_update(kernels::cpu::Host{}, step, b.param.data(), b.grad.data(), b.exp_avg.data(),
                                b.exp_avg_sq.data(), n, &flag);
      INFO("bad element " << bad << " = " << value);
      CHECK(flag == 1.0f);
    }
  }
}

TEST_CASE("the host block cache hands a freed large block to the next request of its size", "[core][memory]") {
  host_block_cache_release();
  const size_t bytes = size_t{3} << 20;
  void* first = host_block_allocate(bytes);
  REQUIRE(reinterpret_cast<uintptr_t>(first) % 64 == 0);
  std::memset(first, 1, bytes);  // the whole size is usable
  host_block_free(first);
  const size_t cached = host_block_cache_bytes();
#if defined(__SANITIZE_ADDRESS__)
  CHECK(cached == 0);  // sanitizer builds never cache, so use-after-free stays visible
#else
  CHECK(cached >= bytes);
  // A request of a slightly different size in the same class reuses it.
  void* second = host_block_allocate(bytes - 100);
  CHECK(second == first);
  CHECK(host_block_cache_bytes() < cached);
  host_block_free(second);
#endif
  host_block_cache_release();
  CHECK(host_block_cache_bytes() == 0);
  // Small blocks go straight to the C library.
  void* small = host_block_allocate(1000);
  host_block_free(small);
  CHECK(host_block_cache_bytes() == 0);
}

TEST_CASE("leaf gradients never alias each other or the gradient flowing through the graph", "[autograd][memory]") {
  // add() hands the same incoming gradient to both inputs, and x appears
  // twice: a gradient adopted instead of copied would be shared.
  const Tensor x = Tensor::from_vector(std::vector<float>{1, 2, 3}, {3}).set_requires_grad();
  const Tensor y = Tensor::from_vector(std::vector<float>{4, 5, 6}, {3}).set_requires_grad();
  const Tensor w = Tensor::from_vector(std::vector<float>{7, 8, 9}, {3}).set_requires_grad();
  sum(mul(add(x, y), w)).backward();
  REQUIRE(x.grad().defined());
  REQUIRE(y.grad().defined());
  CHECK(x.grad().data<float>() != y.grad().data<float>());
  add_(x.grad(), Tensor::ones({3}));
  CHECK(y.grad().to_double_vector() == std::vector<double>{7, 8, 9});
  CHECK(x.grad().to_double_vector() == std::vector<double>{8, 9, 10});
  CHECK(w.grad().to_double_vector() == std::vector<double>{5, 7, 9});
  // A second backward accumulates into the existing gradients.
  sum(mul(x, w)).backward();
  CHECK(x.grad().to_double_vector() == std::vector<double>{15, 17, 19});
  CHECK(y.grad().to_double_vector() == std::vector<double>{7, 8, 9});
}

TEST_CASE("a pix2pix step adopts every parameter's first gradient, copying none", "[autograd][memory]") {
  for (const models::Preset preset : {models::Preset::Paper, models::Preset::Chainer}) {
    INFO(models::to_string(preset));
    manual_seed(3);
    models::Pix2Pix model(testing::small_replay_options(preset));
    const Tensor input = Tensor::uniform({1, 3, 64, 64}, -1, 1), target = Tensor::uniform({1, 3, 64, 64}, -1, 1);
    const FirstGradientCounts before = first_gradient_counts();
    (void)model.train_step(input, target);
    const FirstGradientCounts after = first_gradient_counts();
    size_t parameters = 0;
    for (const nn::Module* network : {static_cast<const nn::Module*>(&model.generator()),
                                      static_cast<const nn::Module*>(&model.discriminator())})
      parameters += network->parameters().size();
    CHECK(after.copied == before.copied);
    // Each network's update gives its parameters their first gradient of
    // the step (chainer's generator pass reaches D's as well).
    CHECK(after.adopted - before.adopted >= static_cast<int64_t>(parameters));
  }
}
