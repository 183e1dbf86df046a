// The pix2pix training step captured once and replayed.
//
// On a CUDA device the step becomes one CUDA graph (core/cuda_graph.h): one
// launch per step instead of one per kernel, and no wait for the device
// inside the step. The batch is copied into fixed device buffers before each
// replay through pinned memory, the values that change from step to step
// (dropout's Philox offsets, Adam's scalars: core/replay_values.h) are
// uploaded beside it, and the losses come back one step late, so the host
// queues step N + 1 while the device still runs step N.
//
// On the CPU a stand-in takes the graph's place: at each replay it runs the
// step again with the host state set back to where the capture began (what a
// graph's kernels have baked in), only the replay values changed. It gives
// the eager step's numbers only if everything that must change between
// replays goes through those values, so the CPU tests check that part of the
// graph path without a GPU.
//
// Step 1 runs eagerly: it picks the convolution algorithms and sizes their
// workspaces, which a capture must not do. Step 2 is captured (if its batch
// has step 1's shapes; else it runs eagerly too, and the next step is
// tried), and it and every later step are replays. A step the capture cannot
// stand for runs eagerly, between replays: a batch of another shape (a short
// last batch), a model that cannot be captured just then
// (Pix2Pix::can_capture), a forward hook, or parameters that changed (moved,
// or frozen or unfrozen; once an optimiser's step counts differ between its
// parameters, every later step). If the capture fails, step() throws and every
// later step runs eagerly.
#pragma once

#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include <pixgrad/core/cuda_graph.h>
#include <pixgrad/core/replay_values.h>
#include <pixgrad/core/tensor.h>
#include <pixgrad/models/pix2pix.h>

namespace pixgrad::models {

class GraphedTrainStep {
 public:
  // The model must stay alive and on its device while this exists.
  explicit GraphedTrainStep(Pix2Pix& model);
  ~GraphedTrainStep();
  GraphedTrainStep(const GraphedTrainStep&) = delete;
  GraphedTrainStep& operator=(const GraphedTrainStep&) = delete;

  // One training step on (input, target), on the host or on the model's
  // device. Returns the losses of the step before this one (none for the
  // first), so the host never waits for the step it has just queued.
  std::optional<StepLosses> step(const Tensor& input, const Tensor& target);
  // Waits for the last step and returns its losses (none if there is none,
  // or they were returned already).
  std::optional<StepLosses> finish();
  // A step whose losses are wanted at once (step, then finish): one
  // synchronisation after the step, none inside it.
  StepLosses run(const Tensor& input, const Tensor& target);

  // Whether the step has been captured (after the second step).
  bool captured() const { return captured_; }
  // Nodes of the CUDA graph (0 before the capture and for the stand-in).
  size_t graph_nodes() const { return graph_ ? graph_->node_count() : 0; }

 private:
  // A step's losses: known on the host, or the ticket of their copy.
  struct Pending {
    std::optional<StepLosses> losses;
    int download = -1;
  };
  Pending take_pending();
  // Queues one step (sets pending_).
  void queue(const Tensor& input, const Tensor& target);
  std::optional<StepLosses> collect(const Pending& pending);
  bool fits_static(const Tensor& input, const Tensor& target) const;
  // Whether this step can be captured now, or replayed.
  bool replayable(const Tensor& input, const Tensor& target) const;
  // What the capture assumed of the model: each parameter's memory and
  // whether it trains (a forward hook, which turns the fused norms off,
  // makes every step eager: see replayable).
  std::vector<std::pair<const void*, bool>> model_signature() const;
  void upload(Tensor& destination, const Tensor& source);
  void capture();
  void replay();
  void run_captured_step();

  Pix2Pix& model_;
  Device device_;
  CaptureSession session_;
  std::unique_ptr<CudaGraph> graph_;                // CUDA devices
  std::unique_ptr<PinnedTransfers> uploads_, downloads_;
  Tensor input_, target_;                           // the fixed buffers the captured step reads
  Tensor packed_;                                   // its losses (StepContext::pack)
  bool warmed_up_ = false;                          // an eager step ran (the capture needs one)
  bool captured_ = false;
  bool capture_failed_ = false;                     // then every step runs eagerly
  Shape warm_input_, warm_target_;                  // the last eager step's batch shapes
  std::vector<std::pair<const void*, bool>> captured_signature_;
  Pending pending_;                                 // the last step's losses
};

}  // namespace pixgrad::models
