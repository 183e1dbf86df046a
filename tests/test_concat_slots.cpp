// concat_slots and the concat that joins them without a copy; batch_norm
// writing into a slot; the U-Net built on both against the same network run
// as separate ops.
#include <catch2/catch.hpp>

#include <set>
#include <utility>
#include <vector>

#include <pixgrad/core/autograd.h>
#include <pixgrad/core/ops.h>
#include <pixgrad/layers/forward_hook.h>
#include <pixgrad/models/chainer_unet.h>
#include <pixgrad/models/unet.h>
#include "gradcheck.h"

using namespace pixgrad;
using Catch::Matchers::Contains;


TEST_CASE("concat joins slots in place and hands out blocks of the gradient", "[ops][concat][slots]") {
  const Shape a{1, 3, 4, 5}, b{1, 2, 4, 5};
  const std::vector<Tensor> slots = concat_slots({a, b}, 1);
  REQUIRE(slots.size() == 2);
  REQUIRE((slots[0].defined() && slots[1].defined()));
  CHECK(static_cast<float*>(slots[1].raw_data()) == static_cast<float*>(slots[0].raw_data()) + shape_numel(a));

  // The slots filled by an op (batch_norm's out) and by hand, then joined.
  const Tensor x = testing::random_tensor(a, 1, DType::Float32).set_requires_grad();
  const Tensor filled = batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), {}, {}, slots[0]);
  CHECK(filled.impl() == slots[0].impl());
  Tensor second = slots[1];
  second.copy_(testing::random_tensor(b, 2, DType::Float32));
  second.set_requires_grad();
  const Tensor r = testing::random_tensor({1, 5, 4, 5}, 3, DType::Float32);
  const Tensor joined = concat({filled, second}, 1);
  CHECK(joined.raw_data() == slots[0].raw_data());  // nothing copied

  // The values side by side; each piece's gradient is its block of r (the
  // norm's input's, through batch_norm's own backward, without a concat).
  sum(mul(joined, r)).backward();
  const std::vector<float> values = joined.to_vector(), rv = r.to_vector();
  const std::vector<float> first_values = filled.to_vector(), second_values = second.to_vector();
  const auto split = static_cast<std::ptrdiff_t>(shape_numel(a));
  CHECK(std::vector<float>(values.begin(), values.begin() + split) == first_values);
  CHECK(std::vector<float>(values.begin() + split, values.end()) == second_values);
  CHECK(second.grad().to_vector() == std::vector<float>(rv.begin() + split, rv.end()));
  const Tensor x_again = x.detach().clone().set_requires_grad();
  const Tensor r_first = Tensor::from_vector(std::vector<float>(rv.begin(), rv.begin() + split), a);
  sum(mul(batch_norm(x_again, Tensor(), Tensor(), Tensor(), Tensor()), r_first)).backward();
  CHECK(x.grad().to_vector() == x_again.grad().to_vector());
}

TEST_CASE("concat copies whatever is not a joinable buffer's slots, whole and in order", "[ops][concat][slots]") {
  const Tensor r = testing::random_tensor({1, 5, 2, 3}, 9, DType::Float32);
  SECTION("slots out of order") {
    const std::vector<Tensor> slots = concat_slots({{1, 2, 2, 3}, {1, 3, 2, 3}}, 1);
    Tensor first = slots[0], second = slots[1];
    first.copy_(testing::random_tensor({1, 2, 2, 3}, 10, DType::Float32));
    second.copy_(testing::random_tensor({1, 3, 2, 3}, 11, DType::Float32));
    const Tensor joined = concat({second, first}, 1);
    CHECK(joined.raw_data() != second.raw_data());
    const std::vector<float> s = second.to_vector(), f = first.to_vector(), j = joined.to_vector();
    std::vector<float> expected = s;
    expected.insert(expected.end(), f.begin(), f.end());
    CHECK(j == expected);
  }
  SECTION("neighbours in an ordinary tensor stay apart: the result is a new tensor") {
    const Tensor t = testing::random_tensor({2, 3, 2, 2}, 12, DType::Float32);
    const Tensor joined = concat({t.batch_slice(0, 1), t.batch_slice(1, 1)}, 0);
    CHECK(joined.raw_data() != t.raw_data());
    CHECK(joined.to_vector() == t.to_vector());
  }
  SECTION("a batch of two: the slots are left to the ops") {
    const std::vector<Tensor> slots = concat_slots({{2, 2, 2, 3}, {2, 3, 2, 3}}, 1);
    REQUIRE(slots.size() == 2);
    CHECK((!slots[0].defined() && !slots[1].defined()));
    const Tensor x = testing::random_tensor({2, 2, 2, 3}, 13, DType::Float32);
    CHECK(batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), {}, {}, slots[0]).defined());
  }
  SECTION("gradients of pieces that are blocks of the result, joined by copy") {
    const Tensor p = testing::random_tensor({1, 2, 2, 3}, 14).set_requires_grad();
    const Tensor q = testing::random_tensor({1, 3, 2, 3}, 15).set_requires_grad();
    testing::check_gradients([](const std::vector<Tensor>& in) { return concat({in[0], in[1]}, 1); }, {p, q});
  }
}

TEST_CASE("batch_norm refuses an out it cannot write", "[ops][batch_norm][slots][errors]") {
  const Tensor x = testing::random_tensor({1, 3, 4, 4}, 20, DType::Float32);
  CHECK_THROWS_WITH(batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), {}, {}, Tensor::empty({1, 3, 4, 5})),
                    Contains("batch_norm: out [1, 3, 4, 5]"));
  CHECK_THROWS_WITH(batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), {}, {}, x), Contains("other memory"));
  Tensor leaf = Tensor::zeros({1, 3, 4, 4}).set_requires_grad();
  CHECK_THROWS_WITH(batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), {}, {}, leaf), Contains("requires grad"));
  CHECK_THROWS_WITH(concat_slots({{1, 3, 4, 4}, {1, 3, 5, 4}}, 1), Contains("cannot join"));
}

namespace {

// A small U-Net's options for both presets' generators (6 levels, 64x64
// inputs, dropout in the decoder).
models::UnetOptions small_unet_options() {
  models::UnetOptions options;
  options.input_channels = 3;
  options.output_channels = 2;
  options.ngf = 4;
  options.num_downs = 6;
  options.use_dropout = true;
  return options;
}

// The network's output and parameter gradients at batch 1, fused (slots
// joined in place) and with a forward hook installed, which turns fusion
// and slots off (the norms must show the hook their own output): the same
// network, every op separate, every concat a copy.
void check_slots_change_nothing(nn::Module& unet, int64_t input_channels, int64_t output_channels) {
  const Tensor input = testing::random_tensor({1, input_channels, 64, 64}, 32, DType::Float32);
  const Tensor r = testing::random_tensor({1, output_channels, 64, 64}, 33, DType::Float32);
  const auto run = [&](bool separate) {
    unet.zero_grad();
    manual_seed(34);  // the dropout masks
    Tensor output;
    if (separate) {
      const nn::ForwardHookGuard hook([](const nn::Module&, const Tensor&, const Tensor& out) { return out; });
      output = unet.forward(input);
    } else {
      output = unet.forward(input);
    }
    sum(mul(output, r)).backward();
    std::vector<std::vector<float>> values{output.to_vector()};
    for (const Tensor& parameter : unet.parameters()) values.push_back(parameter.grad().to_vector());
    return values;
  };
  const auto separate = run(true);
  const auto fused = run(false);
  REQUIRE(fused.size() == separate.size());
  for (size_t i = 0; i < fused.size(); ++i) {
    INFO((i == 0 ? "output" : "gradient of parameter " + std::to_string(i - 1)));
    CHECK(fused[i] == separate[i]);
  }
}

}  // namespace

TEST_CASE("the U-Nets' joined slots and fused norms give the separate ops' bits", "[models][unet][slots]") {
  models::UnetOptions options = small_unet_options();
  SECTION("paper") {
    manual_seed(31);
    models::UnetGenerator unet(options);
    check_slots_change_nothing(unet, 3, 2);
  }
  SECTION("chainer") {
    options.num_downs = 5;
    manual_seed(31);
    models::ChainerUnet unet(options);
    check_slots_change_nothing(unet, 3, 2);
  }
}

namespace {

// How many of the concats that fed the graph of `output` are views of their
// first input's memory (joined in place), and how many concats there are.
std::pair<int, int> concats_in_place(const Tensor& output) {
  int in_place = 0, total = 0;
  std::vector<std::shared_ptr<Node>> pending{output.grad_fn()};
  std::set<const Node*> seen;
  while (!pending.empty()) {
    const std::shared_ptr<Node> node = pending.back();
    pending.pop_back();
    if (!node || !seen.insert(node.get()).second) continue;
    for (const Tensor& input : node->inputs) {
      const std::shared_ptr<Node>& producer = input.defined() ? input.grad_fn() : nullptr;
      if (producer && producer->op == "concat" && !seen.count(producer.get())) {
        ++total;
        in_place += input.raw_data() == producer->inputs[0].raw_data();
      }
      pending.push_back(producer);
    }
  }
  return {in_place, total};
}

}  // namespace

TEST_CASE("at batch 1 the U-Nets join every skip of a normed level in place", "[models][unet][slots]") {
  models::UnetOptions options = small_unet_options();
  manual_seed(41);
  models::UnetGenerator paper(options);
  const Tensor input = testing::random_tensor({1, 3, 64, 64}, 42, DType::Float32);
  // Levels 2..5 are normed on both sides; level 1's skip is the unnormed first conv's.
  CHECK(concats_in_place(paper.forward(input)) == std::make_pair(4, 5));
  CHECK(concats_in_place(paper.forward(concat({input, input}, 0))) == std::make_pair(0, 5));  // batch 2
  options.num_downs = 5;
  models::ChainerUnet chainer(options);
  // Features 1..4 with the decoder outputs before them; the head's concat takes the stem's.
  CHECK(concats_in_place(chainer.forward(input)) == std::make_pair(4, 5));
}
