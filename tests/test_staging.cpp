// The staged host<->device copies of core/staging.h, with a simulated device
// whose copies are queued on one shared stream and run only when someone
// waits, as CUDA's asynchronous copies are: a copy that let go of the staging
// buffer too early would deliver another copy's bytes. Several threads copy
// at once, as the data loader and the training step do.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <deque>
#include <algorithm>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include <pixgrad/core/staging.h>

using pixgrad::StagingBuffer;

namespace {

// One stream shared by every thread: copies run in queue order, when waited for.
class SimulatedStream {
 public:
  void enqueue(std::function<void()> work) {
    const std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(std::move(work));
  }
  void synchronize() {
    for (;;) {
      std::function<void()> work;
      {
        const std::lock_guard<std::mutex> lock(mutex_);
        if (queue_.empty()) return;
        work = std::move(queue_.front());
        queue_.pop_front();
      }
      std::this_thread::yield();  // let other threads run between queued copies
      work();
    }
  }

 private:
  std::mutex mutex_;
  std::deque<std::function<void()>> queue_;
};

// The device side StagingBuffer expects, on the simulated stream. "Device
// memory" is ordinary memory here; only the timing is the device's.
struct SimulatedCopies {
  SimulatedStream& stream;
  void copy_to_staging(void* staging, const void* source, size_t bytes) {
    stream.enqueue([=] { std::memcpy(staging, source, bytes); });
  }
  void copy_from_staging(void* destination, const void* staging, size_t bytes) {
    stream.enqueue([=] { std::memcpy(destination, staging, bytes); });
  }
  void wait() { stream.synchronize(); }
};

// Bytes that differ for every thread, round and position.
std::vector<uint8_t> pattern(size_t bytes, unsigned thread, unsigned round) {
  std::vector<uint8_t> values(bytes);
  for (size_t i = 0; i < bytes; ++i) values[i] = static_cast<uint8_t>(i * 7 + thread * 31 + round * 13 + 1);
  return values;
}

}  // namespace

TEST_CASE("staged copies deliver the right bytes, in chunks, both ways", "[staging]") {
  std::vector<std::vector<uint8_t>> allocations;
  StagingBuffer staging(64, [&](size_t bytes) {
    allocations.emplace_back(bytes);
    return static_cast<void*>(allocations.back().data());
  });
  SimulatedStream stream;
  SimulatedCopies copies{stream};
  for (const size_t bytes : {size_t{0}, size_t{1}, size_t{63}, size_t{64}, size_t{65}, size_t{1000}}) {
    INFO(bytes << " bytes");
    const std::vector<uint8_t> host = pattern(bytes, 1, 2);
    std::vector<uint8_t> device(bytes, 0), back(bytes, 0);
    staging.from_host(device.data(), host.data(), bytes, copies);
    CHECK(device == host);
    staging.to_host(back.data(), device.data(), bytes, copies);
    CHECK(back == host);
  }
  CHECK(allocations.size() == 1);  // allocated once, on first use
  CHECK(allocations.front().size() == 64);
}

TEST_CASE("staged copies from several threads at once never mix their bytes", "[staging]") {
  std::vector<uint8_t> buffer(256);
  std::atomic<int> allocations{0};
  StagingBuffer staging(buffer.size(), [&](size_t) {
    ++allocations;
    return static_cast<void*>(buffer.data());
  });
  SimulatedStream stream;
  constexpr unsigned kThreads = 8, kRounds = 60;
  std::atomic<int> wrong_uploads{0}, wrong_downloads{0};
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      SimulatedCopies copies{stream};
      for (unsigned round = 0; round < kRounds; ++round) {
        // Several chunks per copy, a different length per thread.
        const size_t bytes = 700 + 97 * t + round % 5;
        const std::vector<uint8_t> expected = pattern(bytes, t, round);
        std::vector<uint8_t> device(bytes, 0), host(bytes, 0);
        staging.from_host(device.data(), expected.data(), bytes, copies);
        if (device != expected) ++wrong_uploads;
        staging.to_host(host.data(), device.data(), bytes, copies);
        if (host != expected) ++wrong_downloads;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  CHECK(wrong_uploads == 0);
  CHECK(wrong_downloads == 0);
  CHECK(allocations == 1);
}

TEST_CASE("a staged copy that fails lets the device finish with the buffer before the next copy", "[staging]") {
  std::vector<uint8_t> buffer(64);
  StagingBuffer staging(buffer.size(), [&](size_t) { return static_cast<void*>(buffer.data()); });
  SimulatedStream stream;
  // The second chunk's copy fails after the first chunk is queued.
  struct FailingCopies : SimulatedCopies {
    int calls = 0;
    void copy_from_staging(void* destination, const void* from, size_t bytes) {
      if (++calls == 2) throw std::runtime_error("copy failed");
      SimulatedCopies::copy_from_staging(destination, from, bytes);
    }
  } failing{{stream}};
  const std::vector<uint8_t> host = pattern(200, 3, 4);
  std::vector<uint8_t> device(200, 0);
  CHECK_THROWS_WITH(staging.from_host(device.data(), host.data(), host.size(), failing), "copy failed");
  // The queued first chunk arrived before the error left the copy.
  CHECK(std::equal(device.begin(), device.begin() + 64, host.begin()));
  // The buffer is usable again.
  SimulatedCopies copies{stream};
  std::vector<uint8_t> again(200, 0);
  staging.from_host(again.data(), host.data(), host.size(), copies);
  CHECK(again == host);
  CHECK_THROWS(StagingBuffer(0, [](size_t) { return static_cast<void*>(nullptr); }));
}
