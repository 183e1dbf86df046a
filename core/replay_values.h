// What changes from one replay of a captured step to the next.
//
// A step captured once (as a CUDA graph, core/cuda_graph.h) and launched
// again and again repeats every kernel with the arguments it had at the
// capture. Two kinds of argument must not repeat: the Philox offset of each
// random op (or every replay would draw the same dropout masks) and Adam's
// step-dependent scalars (the bias corrections and the learning rate). While
// a step is captured, the ops that take them ask the current CaptureSession
// for a place in memory instead, and their kernels read the value from there
// when they run. Before each replay, the session advances the host state
// behind each value (the generator's offset, the optimiser's step counts)
// exactly as one eager step would, and writes the values that step reads; so
// after N replays the host state is what N eager steps leave, and a
// checkpoint taken then is the same.
//
// The capture itself must not leave a trace on the host: when it ends, every
// counter is set back to where it was when the capture began.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include <pixgrad/core/device.h>

namespace pixgrad {

class Generator;
class Storage;

// Host state a captured step advances, and the value its kernels read.
class ReplayCounter {
 public:
  virtual ~ReplayCounter() = default;
  // Bytes of the value (at most CaptureSession::kValueBytes).
  virtual size_t value_bytes() const = 0;
  // The host state, as numbers; set_position(position()) changes nothing.
  virtual std::vector<uint64_t> position() const = 0;
  virtual void set_position(const std::vector<uint64_t>& position) = 0;
  // Called once when the capture ends, with the host state one step on from
  // `start` (where it was when the counter was made).
  virtual void end_capture(const std::vector<uint64_t>& start) { (void)start; }
  // Before a replay: advances the host state by one step and writes the
  // value that step's kernels read (value_bytes() bytes at `value`).
  // `start`: the position when the counter was made, the capture's own.
  virtual void advance(const std::vector<uint64_t>& start, void* value) = 0;
  // Whether one value still stands for the host state (an optimiser whose
  // parameters' step counts have drifted apart no longer fits one scalar set).
  virtual bool still_fits() const { return true; }
};

class CaptureSession {
 public:
  static constexpr size_t kValueBytes = 64;   // room for one value
  static constexpr size_t kCapacity = 4096;   // for all values of a session

  // Values on `device`: kernels on a CUDA device read them from its memory,
  // CPU kernels from host memory.
  explicit CaptureSession(Device device);
  ~CaptureSession();
  CaptureSession(const CaptureSession&) = delete;
  CaptureSession& operator=(const CaptureSession&) = delete;

  // The session capturing (or, for the CPU stand-in, replaying) a step on
  // this thread, or nullptr: ops ask it where to read their values.
  static CaptureSession* current();

  // Makes `session` current on this thread for the scope.
  class Scope {
   public:
    explicit Scope(CaptureSession& session);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    CaptureSession* previous_;
  };

  // Where the kernels of the step read the value of `owner`'s counter (on
  // the session's device). At the capture, the first call for an owner makes
  // its counter with make(); a later call for the same owner gets the same
  // place when `shared` (a generator drawn from several times), and is an
  // error otherwise (an optimiser stepping twice in one step). When the
  // stand-in runs the step again, each call finds the counter it made.
  template <typename Make>
  void* value_for(const void* owner, bool shared, Make make) {
    if (Entry* entry = find(owner, shared)) return device_value(*entry);
    return device_value(add(owner, make()));
  }

  // Ends the capture: each counter notes what one step did, then the host
  // state goes back to where the capture began.
  void end_capture();
  // Before each replay: advances every counter by one step and writes the
  // values into host_values() (bytes_used() bytes, to be copied to the device).
  void advance();
  // Whether every counter can still advance (ReplayCounter::still_fits).
  bool still_fits() const;
  const void* host_values() const { return host_values_.data(); }
  void* device_values() const;
  size_t bytes_used() const { return used_; }

  // For the CPU stand-in, which runs the step again at each replay: the host
  // state of every counter, and setting it (rewind_to_capture: where the
  // capture began, which is what a graph's kernels have baked in).
  std::vector<std::vector<uint64_t>> positions() const;
  void set_positions(const std::vector<std::vector<uint64_t>>& positions);
  void rewind_to_capture();
  // From now on value_for finds the counters the capture made, in order.
  void start_rerun();

 private:
  struct Entry {
    const void* owner;
    std::unique_ptr<ReplayCounter> counter;
    std::vector<uint64_t> start;
    size_t offset;
    bool found = false;  // met again in the current stand-in rerun
  };
  Entry* find(const void* owner, bool shared);
  Entry& add(const void* owner, std::unique_ptr<ReplayCounter> counter);
  void* device_value(const Entry& entry) const;

  Device device_;
  std::unique_ptr<Storage> device_block_;  // CUDA sessions only
  std::vector<unsigned char> host_values_;
  std::vector<Entry> entries_;
  size_t used_ = 0;
  bool capturing_ = true;
};

// The first Philox block of a range of `blocks` fresh blocks of `generator`,
// and, while a step is captured, where its kernels read the shift to add to
// `offset` at each replay (nullptr otherwise).
struct PhiloxStart {
  uint64_t seed;
  uint64_t offset;
  const uint64_t* offset_shift;
};
PhiloxStart reserve_philox(Generator& generator, uint64_t blocks);

}  // namespace pixgrad
