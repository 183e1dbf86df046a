// A test double for distributed::Communicator: N ranks that are N threads of
// this process, so that code written for several processes (synchronised
// batch norm, gradient averaging) is tested in the CPU suite, without MPI.
//
//   testing::ThreadWorld world(2);
//   std::vector<Tensor> outputs(2);
//   world.run([&](distributed::Communicator& c) { outputs[c.rank()] = ...; });
//   CHECK(...outputs...);
//
// run() calls the body on size() threads at once, rank r on thread r, waits
// for all of them and rethrows the first exception one of them threw. The
// body takes a Communicator& or a std::shared_ptr<Communicator> (what
// GradientAverage and synchronize_batch_norm hold).
//
// Catch2's assertions are not thread-safe: store results out of the body,
// indexed by rank, and check them after run() on the test's own thread.
// The ranks share the process's random generator (manual_seed): make models
// and draw random numbers before run(), not inside it.
//
// Each collective waits for every rank, combines their values in double in
// rank order (so the result is deterministic, and the same bits on every
// rank) and hands the result to all. The ranks must call the same
// collectives in the same order, with the same op, length and `what`: a
// mismatch, a rank that ends with an exception (the others would wait for
// it forever) or a wait longer than the timeout makes every rank's
// collective throw, so a broken test fails instead of hanging.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <pixgrad/core/tensor.h>
#include <pixgrad/distributed/communicator.h>

namespace pixgrad::testing {

class ThreadWorld {
 public:
  explicit ThreadWorld(int size, std::chrono::seconds timeout = std::chrono::seconds(60))
      : size_(size), timeout_(timeout) {
    if (size < 1) throw std::invalid_argument("ThreadWorld: size must be at least 1");
  }

  int size() const { return size_; }

  template <typename Body>
  void run(const Body& body) const {
    const auto state = std::make_shared<State>(size_, timeout_);
    std::vector<std::thread> threads;
    for (int r = 0; r < size_; ++r) {
      threads.emplace_back([&body, state, r] {
        const auto rank = std::make_shared<Rank>(state, r);
        try {
          if constexpr (std::is_invocable_v<const Body&, std::shared_ptr<distributed::Communicator>>)
            body(std::shared_ptr<distributed::Communicator>(rank));
          else
            body(static_cast<distributed::Communicator&>(*rank));
        } catch (...) {
          state->fail("rank " + std::to_string(r) + " ended with an exception", std::current_exception());
        }
      });
    }
    for (std::thread& thread : threads) thread.join();
    if (state->first_exception) std::rethrow_exception(state->first_exception);
  }

 private:
  // What the ranks of one run() share; every member is guarded by `mutex`.
  struct State {
    State(int size, std::chrono::seconds timeout) : size(size), timeout(timeout), values(size), labels(size) {}

    const int size;
    const std::chrono::seconds timeout;
    std::mutex mutex;
    std::condition_variable changed;
    int arrived = 0;          // ranks waiting in the current collective
    uint64_t completed = 0;   // collectives completed so far
    std::vector<std::vector<double>> values;  // the current collective's, by rank
    std::vector<std::string> labels;          // what each rank says it is calling
    std::vector<double> result;               // the last completed collective's
    std::string failure;                      // once set, every collective throws it
    std::exception_ptr first_exception;       // what run() rethrows

    // Ends the run: every rank waiting now or later throws `why`. The first
    // exception recorded is the cause; the others are its consequences.
    void fail(const std::string& why, std::exception_ptr exception = nullptr) {
      const std::lock_guard<std::mutex> lock(mutex);
      if (failure.empty()) failure = why;
      if (!first_exception) first_exception = exception ? exception : std::make_exception_ptr(std::runtime_error(why));
      changed.notify_all();
    }

    // One collective: rank `rank` contributes `contribution`, and gets the
    // element-wise combination of every rank's.
    std::vector<double> combine(int rank, const std::string& label, distributed::ReduceOp op,
                                std::vector<double> contribution) {
      std::unique_lock<std::mutex> lock(mutex);
      throw_if_failed();
      values[static_cast<size_t>(rank)] = std::move(contribution);
      labels[static_cast<size_t>(rank)] = label;
      const uint64_t round = completed;
      if (++arrived == size) {
        reduce(op);
        arrived = 0;
        ++completed;
        changed.notify_all();
      } else if (!changed.wait_for(lock, timeout, [&] { return completed != round || !failure.empty(); })) {
        failure = "rank " + std::to_string(rank) + " waited more than " + std::to_string(timeout.count()) +
                  " s in " + label + " for the other ranks";
        changed.notify_all();
      }
      throw_if_failed();
      // A rank cannot enter the next collective's reduce before every rank
      // has left this one, so `result` is still this collective's.
      return result;
    }

    // Called by the last rank to arrive, in rank order: deterministic.
    void reduce(distributed::ReduceOp op) {
      for (int r = 1; r < size; ++r) {
        if (labels[static_cast<size_t>(r)] == labels[0]) continue;
        failure = "rank " + std::to_string(r) + " called " + labels[static_cast<size_t>(r)] + " while rank 0 called " +
                  labels[0];
        return;
      }
      result = values[0];
      for (int r = 1; r < size; ++r)
        for (size_t i = 0; i < result.size(); ++i) {
          const double v = values[static_cast<size_t>(r)][i];
          result[i] = op == distributed::ReduceOp::Max ? std::max(result[i], v) : result[i] + v;
        }
    }

    void throw_if_failed() const {
      if (!failure.empty()) throw std::runtime_error("ThreadWorld: " + failure);
    }
  };

  class Rank final : public distributed::Communicator {
   public:
    Rank(std::shared_ptr<State> state, int rank) : state_(std::move(state)), rank_(rank) {}

    int rank() const override { return rank_; }
    int size() const override { return state_->size; }
    int local_rank() const override { return rank_; }
    std::string backend() const override { return "threads"; }

    void all_reduce(Tensor& tensor, distributed::ReduceOp op, const std::string& what) override {
      const std::vector<double> result =
          state_->combine(rank_, label("tensor", op, tensor.numel(), what), op, tensor.to_double_vector());
      tensor.copy_(Tensor::from_vector(result, tensor.shape(), tensor.device()).to(tensor.dtype()));
    }
    void all_reduce(std::vector<double>& values, distributed::ReduceOp op, const std::string& what) override {
      values = state_->combine(rank_, label("host", op, static_cast<int64_t>(values.size()), what), op, values);
    }
    void barrier(const std::string& what) override {
      state_->combine(rank_, "barrier '" + what + "'", distributed::ReduceOp::Sum, {});
    }
    // Ends the run (not the process, as the real backends do).
    [[noreturn]] void abort(int exit_code) override {
      const std::string why = "rank " + std::to_string(rank_) + " aborted with exit code " + std::to_string(exit_code);
      state_->fail(why);
      throw std::runtime_error(why);
    }

   private:
    static std::string label(const char* kind, distributed::ReduceOp op, int64_t length, const std::string& what) {
      return std::string(op == distributed::ReduceOp::Max ? "max" : "sum") + " of " + std::to_string(length) + " " +
             kind + " values '" + what + "'";
    }

    std::shared_ptr<State> state_;
    int rank_;
  };

  int size_;
  std::chrono::seconds timeout_;
};

}  // namespace pixgrad::testing
