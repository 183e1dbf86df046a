// Gradients that are final before the backward pass ends: the engine's
// GradientReadyScope, and GradientAverage's reduction overlapping the pass
// on two ranks (threads of this process, tests/thread_communicator.h), on
// its own and in a data-parallel pix2pix step.
#include <catch2/catch.hpp>

#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <pixgrad/core/autograd.h>
#include <pixgrad/core/ops.h>
#include <pixgrad/distributed/gradient_average.h>
#include <pixgrad/models/pix2pix.h>
#include "graph_replay_case.h"
#include "thread_communicator.h"

using namespace pixgrad;
using Catch::Matchers::Contains;

namespace {

Tensor scalar_leaf(double value, bool requires_grad = true) {
  Tensor t = Tensor::full({}, value, Device::cpu(), DType::Float64);
  if (requires_grad) t.set_requires_grad();
  return t;
}

// What a GradientReadyScope saw: each leaf told of, by name, in order, with
// its gradient at that moment.
struct Told {
  std::vector<std::string> order;
  std::map<std::string, double> gradient_then;
};

GradientReady recorder(Told& told, const std::map<const TensorImpl*, std::string>& names) {
  return [&told, names](const Tensor& leaf) {
    const std::string& name = names.at(leaf.impl());
    told.order.push_back(name);
    told.gradient_then[name] = leaf.grad().item();
  };
}

// recorder(), also noting the order foretold as each pass begins.
GradientListener foretelling_recorder(Told& told, std::vector<std::string>& foretold,
                                      const std::map<const TensorImpl*, std::string>& names) {
  return GradientListener{{},
                          [&foretold, names](const std::vector<Tensor>& order) {
                            for (const Tensor& leaf : order) foretold.push_back(names.at(leaf.impl()));
                          },
                          recorder(told, names)};
}

}  // namespace

TEST_CASE("backward tells of each leaf once, when no node of the pass can add to its gradient",
          "[autograd][gradient_ready]") {
  // w1 feeds the first op and, through a skip, one near the loss; w2 the
  // middle; w3 the last op. x requires no gradient.
  Tensor w1 = scalar_leaf(2), w2 = scalar_leaf(3), w3 = scalar_leaf(5), x = scalar_leaf(7, false);
  const std::map<const TensorImpl*, std::string> names{{w1.impl(), "w1"}, {w2.impl(), "w2"}, {w3.impl(), "w3"}};
  Told told;
  std::vector<std::string> foretold;
  {
    const GradientReadyScope scope(foretelling_recorder(told, foretold, names));
    const Tensor a = mul(w1, x);
    const Tensor b = mul(a, w2);
    const Tensor c = add(b, mul(w1, 11.0));
    mul(c, w3).backward();
  }
  // loss = (w1 x w2 + 11 w1) w3
  CHECK(w1.grad().item() == Approx((7 * 3 + 11) * 5));
  CHECK(w2.grad().item() == Approx(2 * 7 * 5));
  CHECK(w3.grad().item() == Approx(2 * 7 * 3 + 11 * 2));
  REQUIRE(told.order.size() == 3);
  CHECK(told.order.front() == "w3");  // the last op's weight is final first
  CHECK(told.order.back() == "w1");   // the first op's, used twice, last
  CHECK(foretold == told.order);      // the order given as the pass began
  // Told after the last contribution: the gradient then is the final one
  // (w1's first contribution alone would be 11 * 5).
  for (const auto& [name, leaf] : std::map<std::string, Tensor>{{"w1", w1}, {"w2", w2}, {"w3", w3}})
    CHECK(told.gradient_then.at(name) == leaf.grad().item());
}

TEST_CASE("grad() tells of nothing, every live scope is told, and an unreached leaf is not told of",
          "[autograd][gradient_ready]") {
  Tensor w = scalar_leaf(2), unused = scalar_leaf(4);
  const std::map<const TensorImpl*, std::string> names{{w.impl(), "w"}, {unused.impl(), "unused"}};
  Told outer, inner;
  const GradientReadyScope outer_scope(recorder(outer, names));
  (void)grad(mul(w, w), {w});
  CHECK(outer.order.empty());
  {
    const GradientReadyScope inner_scope(recorder(inner, names));
    mul(w, 3.0).backward();
  }
  mul(w, 3.0).backward();
  CHECK(inner.order == std::vector<std::string>{"w"});
  CHECK(outer.order == std::vector<std::string>{"w", "w"});
  CHECK(outer.gradient_then.at("w") == 6);  // accumulated over both passes
}

TEST_CASE("scopes may end in any order", "[autograd][gradient_ready]") {
  Tensor w = scalar_leaf(2);
  const std::map<const TensorImpl*, std::string> names{{w.impl(), "w"}};
  Told first, second, last;
  auto a = std::make_unique<GradientReadyScope>(recorder(first, names));
  auto b = std::make_unique<GradientReadyScope>(recorder(second, names));
  a.reset();  // the first made ends first
  mul(w, 3.0).backward();
  b.reset();
  const GradientReadyScope c(recorder(last, names));
  mul(w, 3.0).backward();
  CHECK(first.order.empty());
  CHECK(second.order == std::vector<std::string>{"w"});
  CHECK(last.order == std::vector<std::string>{"w"});
}

TEST_CASE("an exception from the listener ends the backward pass", "[autograd][gradient_ready][errors]") {
  Tensor w = scalar_leaf(2);
  const GradientReadyScope scope([](const Tensor&) { throw std::runtime_error("listener failed"); });
  CHECK_THROWS_WITH(mul(w, w).backward(), Contains("listener failed"));
}

namespace {

// Passes collectives through and notes, per rank, what each reduction was
// and how many gradients the rank's backward pass had finished when it
// started (-1: outside a pass). `leaves_told` counts them, through a
// GradientReadyScope made before the averaging's own, so told first.
thread_local int leaves_told = -1;

struct Start {
  std::string what;
  int leaves_told;
  bool operator==(const Start& other) const { return what == other.what && leaves_told == other.leaves_told; }
};

// Counts the gradients of the backward passes while it lives.
class CountTells {
 public:
  CountTells() : scope_([](const Tensor&) { ++leaves_told; }) { leaves_told = 0; }
  ~CountTells() { leaves_told = -1; }

 private:
  GradientReadyScope scope_;
};

class StartRecorder final : public distributed::Communicator {
 public:
  explicit StartRecorder(std::shared_ptr<distributed::Communicator> inner) : inner_(std::move(inner)) {}
  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }
  int local_rank() const override { return inner_->local_rank(); }
  std::string backend() const override { return inner_->backend(); }
  void all_reduce(Tensor& tensor, distributed::ReduceOp op, const std::string& what) override {
    starts.push_back({what, leaves_told});
    inner_->all_reduce(tensor, op, what);
  }
  void all_reduce(std::vector<double>& values, distributed::ReduceOp op, const std::string& what) override {
    inner_->all_reduce(values, op, what);
  }
  void barrier(const std::string& what) override { inner_->barrier(what); }

  std::vector<Start> starts;

 private:
  std::shared_ptr<distributed::Communicator> inner_;
};

// A communicator whose started reductions happen only when waited for, as
// NCCL's on their own stream complete at some later time: a tensor read
// before its wait still holds this rank's own gradients.
class DeferringCommunicator final : public distributed::Communicator {
 public:
  explicit DeferringCommunicator(std::shared_ptr<distributed::Communicator> inner) : inner_(std::move(inner)) {}
  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }
  int local_rank() const override { return inner_->local_rank(); }
  std::string backend() const override { return "deferring " + inner_->backend(); }
  void all_reduce(Tensor& tensor, distributed::ReduceOp op, const std::string& what) override {
    inner_->all_reduce(tensor, op, what);
  }
  std::unique_ptr<distributed::PendingAllReduce> start_all_reduce(Tensor& tensor, distributed::ReduceOp op,
                                                                  const std::string& what) override {
    ++started;
    return std::make_unique<Deferred>(*this, tensor, op, what);
  }
  void all_reduce(std::vector<double>& values, distributed::ReduceOp op, const std::string& what) override {
    inner_->all_reduce(values, op, what);
  }
  void barrier(const std::string& what) override { inner_->barrier(what); }

  int started = 0, completed = 0;

 private:
  class Deferred final : public distributed::PendingAllReduce {
   public:
    Deferred(DeferringCommunicator& owner, Tensor& tensor, distributed::ReduceOp op, std::string what)
        : owner_(owner), tensor_(tensor), op_(op), what_(std::move(what)) {}
    void wait() override {
      if (done_) return;
      owner_.inner_->all_reduce(tensor_, op_, what_);
      ++owner_.completed;
      done_ = true;
    }

   private:
    DeferringCommunicator& owner_;
    Tensor tensor_;  // shares the caller's memory
    distributed::ReduceOp op_;
    std::string what_;
    bool done_ = false;
  };
  std::shared_ptr<distributed::Communicator> inner_;
};

// A chain of layers y = tanh(w_i * y + b_i), element-wise on 36 numbers
// (w and b of 288 bytes each), on a rank's own input; the sum of the
// output is the loss.
struct Chain {
  std::vector<Tensor> parameters;  // w_0, b_0, w_1, b_1, ...

  explicit Chain(int layers) {
    for (int i = 0; i < layers; ++i) {
      std::vector<double> w(36), b(36);
      for (int k = 0; k < 36; ++k) {
        w[static_cast<size_t>(k)] = 0.2 * ((k * 7 + i * 3) % 11 - 5);
        b[static_cast<size_t>(k)] = 0.01 * (k - 3 * i);
      }
      parameters.push_back(Tensor::from_vector(w, {36}));
      parameters.push_back(Tensor::from_vector(b, {36}));
    }
    for (Tensor& p : parameters) p.set_requires_grad();
  }

  Tensor loss(int rank) const {
    std::vector<double> input(36);
    for (int k = 0; k < 36; ++k) input[static_cast<size_t>(k)] = 0.1 * (k % 9 + 1) * (rank == 0 ? 1 : -0.7);
    Tensor y = Tensor::from_vector(input, {36});
    for (size_t i = 0; i < parameters.size(); i += 2) y = tanh(add(mul(parameters[i], y), parameters[i + 1]));
    return sum(y);
  }
};

std::vector<std::vector<double>> gradients_of(const Chain& chain) {
  std::vector<std::vector<double>> all;
  for (const Tensor& p : chain.parameters) all.push_back(p.grad().to_double_vector());
  return all;
}

}  // namespace

TEST_CASE("averaging that overlaps the backward pass starts buckets during it and gives the same means",
          "[distributed][gradient_ready]") {
  // Buckets of 1200 bytes: two layers' w and b each (none is a quarter
  // bucket, so all are packed), three buckets for six layers, the last
  // layers' first.
  constexpr size_t kBucketBytes = 1200;
  constexpr int kLayers = 6;
  testing::ThreadWorld world(2);
  std::vector<std::vector<std::vector<double>>> after(2), overlapped(2);
  std::vector<std::vector<Start>> starts(2);
  world.run([&](std::shared_ptr<distributed::Communicator> communicator) {
    const int rank = communicator->rank();
    auto recorder = std::make_shared<StartRecorder>(communicator);
    const distributed::GradientAverage average(recorder, kBucketBytes);
    Chain plain(kLayers), overlapping(kLayers);

    plain.loss(rank).backward();
    average(plain.parameters, "gradients after the pass");
    after[static_cast<size_t>(rank)] = gradients_of(plain);

    recorder->starts.clear();
    const CountTells count;
    const auto overlap = average.during_backward(overlapping.parameters, "gradients during the pass");
    overlapping.loss(rank).backward();
    overlap->finish();
    overlapped[static_cast<size_t>(rank)] = gradients_of(overlapping);
    starts[static_cast<size_t>(rank)] = recorder->starts;
  });
  for (int rank = 0; rank < 2; ++rank) {
    INFO("rank " << rank);
    CHECK(overlapped[static_cast<size_t>(rank)] == after[static_cast<size_t>(rank)]);  // bit for bit
    CHECK(overlapped[static_cast<size_t>(rank)] == overlapped[0]);                    // the same on every rank
  }
  // Each bucket started the moment its last gradient was final: after 4,
  // 8 and 12 of the 12, in the same order on both ranks.
  const std::string what = "gradients during the pass";
  CHECK(starts[0] == std::vector<Start>{{what, 4}, {what, 8}, {what, 12}});
  CHECK(starts[1] == starts[0]);
}

TEST_CASE("averaging during backward waits for reductions that complete later, and gives the same means",
          "[distributed][gradient_ready]") {
  constexpr size_t kBucketBytes = 1200;  // three buckets for six layers, as above
  constexpr int kLayers = 6;
  testing::ThreadWorld world(2);
  std::vector<std::vector<std::vector<double>>> after(2), overlapped(2);
  std::vector<int> started(2), completed(2), completed_at_end(2);
  world.run([&](std::shared_ptr<distributed::Communicator> communicator) {
    const size_t rank = static_cast<size_t>(communicator->rank());
    Chain plain(kLayers), overlapping(kLayers);
    plain.loss(static_cast<int>(rank)).backward();
    distributed::GradientAverage(communicator, kBucketBytes)(plain.parameters, "gradients after the pass");
    after[rank] = gradients_of(plain);

    auto deferring = std::make_shared<DeferringCommunicator>(communicator);
    const distributed::GradientAverage average(deferring, kBucketBytes);
    const auto overlap = average.during_backward(overlapping.parameters, "gradients during the pass");
    overlapping.loss(static_cast<int>(rank)).backward();
    started[rank] = deferring->started;
    completed[rank] = deferring->completed;  // nothing waited for during the pass
    overlap->finish();
    overlapped[rank] = gradients_of(overlapping);
    completed_at_end[rank] = deferring->completed;
  });
  for (size_t rank = 0; rank < 2; ++rank) {
    INFO("rank " << rank);
    CHECK(started[rank] == 3);  // every bucket started during the pass
    CHECK(completed[rank] == 0);
    CHECK(completed_at_end[rank] == 3);
    CHECK(overlapped[rank] == after[rank]);  // bit for bit
  }
}

TEST_CASE("small gradients between large ones start once a bucket's worth of gradients has become final",
          "[distributed][gradient_ready]") {
  // A chain of scalars y = tanh(y + mean(p_i * p_i) * x_i), so each p_i may
  // have a size of its own; the pass finishes the last p_i first. In that
  // order: small (64 bytes), large (2048), small, large, ... With buckets of
  // 4096 bytes the large are reduced alone and the small packed, a pair of
  // small ones closing with the second large gradient after them (64 + 2048
  // + 64 + 2048 bytes final since the first), not at the end of the pass.
  constexpr size_t kBucketBytes = 4096;
  constexpr int kPairs = 6;
  const auto make_parameters = [] {
    std::vector<Tensor> made;
    for (int i = 0; i < 2 * kPairs; ++i) {
      const bool large = i % 2 == 0;  // the pass finishes p_11 (small) first
      std::vector<float> values(large ? 512 : 16);
      for (size_t k = 0; k < values.size(); ++k) values[k] = 0.01f * static_cast<float>((k * 5 + i) % 13) - 0.05f;
      made.push_back(Tensor::from_vector(values, {static_cast<int64_t>(values.size())}));
      made.back().set_requires_grad();
    }
    return made;
  };
  const auto loss_of = [](const std::vector<Tensor>& parameters, int rank) {
    Tensor y = Tensor::full({}, rank == 0 ? 0.3 : -0.2, Device::cpu(), DType::Float32);
    for (size_t i = 0; i < parameters.size(); ++i)
      y = tanh(add(y, mul(mean(mul(parameters[i], parameters[i])), 1.0 + 0.5 * rank + 0.1 * static_cast<double>(i))));
    return y;
  };
  testing::ThreadWorld world(2);
  std::vector<std::vector<std::vector<double>>> after(2), overlapped(2);
  std::vector<std::vector<Start>> starts(2);
  world.run([&](std::shared_ptr<distributed::Communicator> communicator) {
    const int rank = communicator->rank();
    auto recorder = std::make_shared<StartRecorder>(communicator);
    const distributed::GradientAverage average(recorder, kBucketBytes);
    const std::vector<Tensor> plain = make_parameters(), overlapping = make_parameters();
    loss_of(plain, rank).backward();
    average(plain, "after");
    recorder->starts.clear();
    const CountTells count;
    const auto overlap = average.during_backward(overlapping, "during");
    loss_of(overlapping, rank).backward();
    overlap->finish();
    for (size_t i = 0; i < plain.size(); ++i) {
      // Packed differently from after the pass, but every sum here is of two terms: the same bits.
      after[static_cast<size_t>(rank)].push_back(plain[i].grad().to_double_vector());
      overlapped[static_cast<size_t>(rank)].push_back(overlapping[i].grad().to_double_vector());
    }
    starts[static_cast<size_t>(rank)] = recorder->starts;
  });
  CHECK(overlapped[0] == after[0]);
  CHECK(overlapped[1] == overlapped[0]);
  // Large ones at 2, 4, 6, ...; each pair of small ones with the large one
  // that closes it (at 4 and 8 of 12), the last pair at the end.
  const std::vector<int> expected{2, 4, 4, 6, 8, 8, 10, 12, 12};
  std::vector<int> told;
  for (const Start& start : starts[0]) told.push_back(start.leaves_told);
  CHECK(told == expected);
  CHECK(starts[1] == starts[0]);
}

TEST_CASE("averaging during backward ignores the other network's gradients and reduces unreached ones at the end",
          "[distributed][gradient_ready]") {
  testing::ThreadWorld world(2);
  std::vector<std::vector<double>> ours(2), theirs(2), unreached(2);
  world.run([&](std::shared_ptr<distributed::Communicator> communicator) {
    const int rank = communicator->rank();
    const distributed::GradientAverage average(communicator, 64);
    Tensor mine = scalar_leaf(rank == 0 ? 1.0 : 3.0), other = scalar_leaf(2), idle = scalar_leaf(5);
    idle.set_grad(Tensor::full({}, rank == 0 ? 10.0 : 20.0, Device::cpu(), DType::Float64));
    const auto overlap = average.during_backward({mine, idle}, "ours");
    mul(mul(mine, other), mine).backward();  // d/dmine = 2 mine other, d/dother = mine^2
    overlap->finish();
    ours[static_cast<size_t>(rank)] = mine.grad().to_double_vector();
    theirs[static_cast<size_t>(rank)] = other.grad().to_double_vector();
    unreached[static_cast<size_t>(rank)] = idle.grad().to_double_vector();
  });
  for (int rank = 0; rank < 2; ++rank) {
    CHECK(ours[static_cast<size_t>(rank)] == std::vector<double>{(2 * 1 * 2 + 2 * 3 * 2) / 2.0});
    CHECK(unreached[static_cast<size_t>(rank)] == std::vector<double>{15});
  }
  CHECK(theirs[0] == std::vector<double>{1});  // left as the rank computed it
  CHECK(theirs[1] == std::vector<double>{9});
}

TEST_CASE("averaging during backward takes a parameter unfrozen before the pass, and one frozen since",
          "[distributed][gradient_ready]") {
  // `unfrozen` is frozen when the averaging is made and trained by the pass;
  // `frozen` is trained then and frozen before the pass, with a gradient
  // each rank kept from earlier: an optimiser would step it, so it is
  // averaged too.
  testing::ThreadWorld world(2);
  std::vector<std::vector<double>> unfrozen_grads(2), frozen_grads(2);
  world.run([&](std::shared_ptr<distributed::Communicator> communicator) {
    const int rank = communicator->rank();
    const distributed::GradientAverage average(communicator, 64);
    Tensor unfrozen = scalar_leaf(rank == 0 ? 1.0 : 3.0, false), frozen = scalar_leaf(2);
    frozen.set_grad(Tensor::full({}, rank == 0 ? 10.0 : 20.0, Device::cpu(), DType::Float64));
    const auto overlap = average.during_backward({unfrozen, frozen}, "ours");
    unfrozen.set_requires_grad(true);
    frozen.set_requires_grad(false);
    mul(mul(unfrozen, frozen), unfrozen).backward();  // d/dunfrozen = 2 unfrozen frozen
    overlap->finish();
    unfrozen_grads[static_cast<size_t>(rank)] = unfrozen.grad().to_double_vector();
    frozen_grads[static_cast<size_t>(rank)] = frozen.grad().to_double_vector();
  });
  for (size_t rank = 0; rank < 2; ++rank)
    CHECK(unfrozen_grads[rank] == std::vector<double>{(2 * 1 * 2 + 2 * 3 * 2) / 2.0});
  CHECK(frozen_grads[0] == std::vector<double>{15});
  CHECK(frozen_grads[1] == std::vector<double>{15});
}

TEST_CASE("a second backward pass reaching gradients being averaged is refused before it adds to them",
          "[distributed][gradient_ready][errors]") {
  testing::ThreadWorld world(2);
  std::vector<std::string> errors(2);
  std::vector<double> means(2);
  world.run([&](std::shared_ptr<distributed::Communicator> communicator) {
    const int rank = communicator->rank();
    const distributed::GradientAverage average(communicator);
    Tensor w = scalar_leaf(rank == 0 ? 1.0 : 3.0), other = scalar_leaf(1);
    const auto overlap = average.during_backward({w}, "w's gradient");
    mul(w, w).backward();        // 2w
    mul(other, 5.0).backward();  // another pass, not reaching w: allowed
    for (const Tensor& root : {mul(w, 7.0), w}) {  // a pass through an op, and a pass of w alone
      try {
        root.backward();
      } catch (const std::exception& e) {
        errors[static_cast<size_t>(rank)] += e.what();
      }
    }
    overlap->finish();
    means[static_cast<size_t>(rank)] = w.grad().item();
  });
  for (int rank = 0; rank < 2; ++rank) {
    const std::string& error = errors[static_cast<size_t>(rank)];
    CHECK_THAT(error, Contains("w's gradient"));
    const size_t first = error.find("second backward pass");
    CHECK((first != std::string::npos && error.find("second backward pass", first + 1) != std::string::npos));
    CHECK(means[static_cast<size_t>(rank)] == (2 * 1 + 2 * 3) / 2.0);  // the first pass's, untouched by the second
  }
}

namespace {

using NamedGradients = std::map<std::string, std::vector<float>>;

// Each update's gradients as the optimiser receives them, "G." or "D."
// before the parameter's name.
void record_gradients(models::Pix2Pix& model, NamedGradients& into) {
  model.set_before_update([&into](models::Network network, nn::Module& module) {
    const std::string prefix = network == models::Network::Generator ? "G." : "D.";
    for (const auto& [name, parameter] : module.named_parameters())
      if (parameter.grad().defined()) into[prefix + name] = parameter.grad().to_vector();
  });
}

}  // namespace

TEST_CASE("a data-parallel pix2pix step averages both networks' gradients, both presets",
          "[distributed][gradient_ready][pix2pix]") {
  for (const models::Preset preset : {models::Preset::Paper, models::Preset::Chainer}) {
    INFO(models::to_string(preset));
    // Dropout off: the ranks are threads of this process, which would draw
    // from one generator. The models are made here, on one thread, alike.
    models::Pix2PixOptions options = testing::small_replay_options(preset);
    options.generator.use_dropout = false;
    std::vector<std::unique_ptr<models::Pix2Pix>> ranks, alone;
    for (int r = 0; r < 2; ++r) {
      manual_seed(5);
      ranks.push_back(std::make_unique<models::Pix2Pix>(options));
      manual_seed(5);
      alone.push_back(std::make_unique<models::Pix2Pix>(options));
    }
    const auto batches = testing::replay_batches({{1, 3, 64, 64}, {1, 3, 64, 64}});
    std::vector<NamedGradients> averaged(2), own(2);
    testing::ThreadWorld world(2);
    world.run([&](std::shared_ptr<distributed::Communicator> communicator) {
      const size_t r = static_cast<size_t>(communicator->rank());
      ranks[r]->set_data_parallel(communicator);
      record_gradients(*ranks[r], averaged[r]);
      record_gradients(*alone[r], own[r]);
      (void)ranks[r]->train_step(batches[r].first, batches[r].second);
      (void)alone[r]->train_step(batches[r].first, batches[r].second);
    });
    // The mean of what each rank computed alone; the thread world sums in
    // double, so the mean is the exact one rounded once. The paper preset
    // updates D first and then backpropagates G's loss through the updated
    // D, which differs between a replica and a model trained alone: there
    // only D's gradients compare. The chainer preset computes both before
    // either update (and G's backward reaches D's parameters, which the
    // averaging of G's gradients must leave alone).
    REQUIRE(own[0].size() == own[1].size());
    const bool same_on_every_rank = averaged[0] == averaged[1];  // the same bits
    CHECK(same_on_every_rank);
    REQUIRE(averaged[0].size() == own[0].size());
    int64_t compared = 0, differing = 0;
    for (const auto& [name, first] : own[0]) {
      if (preset == models::Preset::Paper && name.rfind("D.", 0) != 0) continue;
      compared += static_cast<int64_t>(first.size());
      const std::vector<float>& second = own[1].at(name);
      const std::vector<float>& got = averaged[0].at(name);
      for (size_t i = 0; i < first.size(); ++i)
        differing += got[i] == static_cast<float>((static_cast<double>(first[i]) + second[i]) / 2) ? 0 : 1;
    }
    CHECK(compared > 0);
    CHECK(differing == 0);
  }
}

TEST_CASE("the paper U-Net's gradient buckets start as its backward pass finishes them",
          "[distributed][gradient_ready][pix2pix]") {
  // Buckets of a sixth of G's gradients, so that there are several. The
  // decoder's outer layers are finished first, though G lists its encoder's
  // parameters first.
  const models::Pix2PixOptions options = testing::small_replay_options(models::Preset::Paper);
  manual_seed(5);
  const std::vector<std::unique_ptr<models::Pix2Pix>> models = [&] {
    std::vector<std::unique_ptr<models::Pix2Pix>> made;
    for (int r = 0; r < 2; ++r) {
      manual_seed(5);
      made.push_back(std::make_unique<models::Pix2Pix>(options));
    }
    return made;
  }();
  size_t bytes = 0, count = 0;
  for (const Tensor& p : models[0]->generator().parameters()) bytes += p.nbytes(), ++count;
  const auto batches = testing::replay_batches({{1, 3, 64, 64}, {1, 3, 64, 64}});
  std::vector<std::vector<Start>> starts(2);
  testing::ThreadWorld world(2);
  world.run([&](std::shared_ptr<distributed::Communicator> communicator) {
    const size_t r = static_cast<size_t>(communicator->rank());
    auto recorder = std::make_shared<StartRecorder>(communicator);
    const distributed::GradientAverage average(recorder, bytes / 6);
    models::Pix2Pix& model = *models[r];
    model.generator().train();
    const Tensor loss = l1_loss(model.generator().forward(batches[r].first), batches[r].second);
    const CountTells count_tells;
    const auto overlap = average.during_backward(model.generator().parameters(), "G's gradients");
    loss.backward();
    overlap->finish();
    starts[r] = recorder->starts;
  });
  CHECK(starts[1] == starts[0]);
  REQUIRE(starts[0].size() >= 6);
  WARN("the first of " << starts[0].size() << " buckets started after " << starts[0].front().leaves_told << " of "
                       << count << " gradients were final");
  // In the order the pass finishes them: 11 of 31 (the outer layers are
  // small, so the first bucket fills late); in the reverse of the
  // parameters' order (encoder, then decoder) it would be 17.
  CHECK(starts[0].front().leaves_told <= static_cast<int>(count) / 2);
}

TEST_CASE("listeners: a leaf unfrozen after its op ran, a scope ended mid-pass, a pass of one leaf",
          "[autograd][gradient_ready]") {
  SECTION("a leaf that required no gradient when its op ran gets none, and is not told of") {
    Tensor w = scalar_leaf(2), v = scalar_leaf(3);
    v.set_requires_grad(false);
    const Tensor product = mul(w, v);
    v.set_requires_grad(true);
    const std::map<const TensorImpl*, std::string> names{{w.impl(), "w"}, {v.impl(), "v"}};
    Told told;
    std::vector<std::string> foretold;
    const GradientReadyScope scope(foretelling_recorder(told, foretold, names));
    product.backward();
    CHECK(foretold == std::vector<std::string>{"w"});
    CHECK(told.order == std::vector<std::string>{"w"});
    CHECK_FALSE(v.grad().defined());
  }
  SECTION("a scope another listener ends during the pass is not called again") {
    Tensor w = scalar_leaf(2);
    int ended_calls = 0;
    auto doomed = std::make_unique<GradientReadyScope>([&ended_calls](const Tensor&) { ++ended_calls; });
    std::unique_ptr<GradientReadyScope> ender;  // made after, so told after: ends `doomed` as the pass begins
    ender = std::make_unique<GradientReadyScope>(
        GradientListener{{}, [&doomed](const std::vector<Tensor>&) { doomed.reset(); }, {}});
    mul(w, w).backward();
    CHECK(ended_calls == 0);
  }
  SECTION("a pass whose root is a leaf is told of like any other") {
    Tensor w = scalar_leaf(2);
    const std::map<const TensorImpl*, std::string> names{{w.impl(), "w"}};
    Told told;
    const GradientReadyScope scope(recorder(told, names));
    w.backward();
    CHECK(told.order == std::vector<std::string>{"w"});
    CHECK(told.gradient_then.at("w") == 1);
  }
}

TEST_CASE("a pass one averaging refuses leaves the others as they were", "[distributed][gradient_ready][errors]") {
  testing::ThreadWorld world(2);
  std::vector<std::string> errors(2);
  std::vector<double> a_means(2), b_means(2);
  world.run([&](std::shared_ptr<distributed::Communicator> communicator) {
    const int rank = communicator->rank();
    const distributed::GradientAverage average(communicator);
    Tensor a = scalar_leaf(rank == 0 ? 1.0 : 3.0), b = scalar_leaf(rank == 0 ? 2.0 : 4.0);
    const auto overlap_a = average.during_backward({a}, "a's gradient");
    const auto overlap_b = average.during_backward({b}, "b's gradient");
    mul(b, b).backward();  // b's pass: b's averaging plans on it
    try {
      mul(a, b).backward();  // reaches b again: refused by b's, before a's plans on it
    } catch (const std::exception& e) {
      errors[static_cast<size_t>(rank)] = e.what();
    }
    mul(a, a).backward();  // a's own pass
    overlap_a->finish();
    overlap_b->finish();
    a_means[static_cast<size_t>(rank)] = a.grad().item();
    b_means[static_cast<size_t>(rank)] = b.grad().item();
  });
  for (int rank = 0; rank < 2; ++rank) {
    CHECK_THAT(errors[static_cast<size_t>(rank)], Contains("b's gradient"));
    CHECK(a_means[static_cast<size_t>(rank)] == (2 * 1 + 2 * 3) / 2.0);
    CHECK(b_means[static_cast<size_t>(rank)] == (2 * 2 + 2 * 4) / 2.0);
  }
}
