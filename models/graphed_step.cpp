#include <pixgrad/models/graphed_step.h>

#include <algorithm>
#include <vector>

#include <pixgrad/core/error.h>
#include <pixgrad/layers/forward_hook.h>

namespace pixgrad::models {

namespace {

constexpr size_t kPackedBytes = 8 * sizeof(float);  // StepContext::pack on a CUDA device: 8 floats
constexpr int kUploadsPerStep = 3;                  // input, target, replay values

}  // namespace

GraphedTrainStep::GraphedTrainStep(Pix2Pix& model) : model_(model), device_(model.device()), session_(device_) {}

GraphedTrainStep::~GraphedTrainStep() {
  // The graph goes first (it waits for the device), the buffers it read after.
  graph_.reset();
}

bool GraphedTrainStep::fits_static(const Tensor& input, const Tensor& target) const {
  return input_.defined() && input.shape() == input_.shape() && target.shape() == target_.shape() &&
         input.dtype() == input_.dtype() && target.dtype() == target_.dtype();
}

void GraphedTrainStep::upload(Tensor& destination, const Tensor& source) {
  if (!uploads_ || source.device() == device_) return destination.copy_(source);
  uploads_->upload(destination.raw_data(), source.raw_data(), source.nbytes());
}

std::optional<StepLosses> GraphedTrainStep::step(const Tensor& input, const Tensor& target) {
  PIXGRAD_CHECK(input.defined() && target.defined() && (input.device() == device_ || input.is_cpu()) &&
                    (target.device() == device_ || target.is_cpu()),
                "graphed step: the batch must be on the host or on the model's device (", device_.str(), ")");
  PIXGRAD_CHECK(model_.device() == device_, "graphed step: the model moved from ", device_.str(), " to ",
                model_.device().str(), "; make a new GraphedTrainStep for it there");
  // This step is queued before the previous one's losses are waited for, so
  // the device goes from one step to the next without waiting for the host.
  const Pending previous = take_pending();
  try {
    queue(input, target);
  } catch (...) {
    pending_ = previous;  // a failed step does not lose the one before
    throw;
  }
  return collect(previous);
}

std::vector<std::pair<const void*, bool>> GraphedTrainStep::model_signature() const {
  std::vector<std::pair<const void*, bool>> signature;
  for (const nn::Module* network : {static_cast<const nn::Module*>(&model_.generator()),
                                    static_cast<const nn::Module*>(&model_.discriminator())})
    for (const Tensor& parameter : network->parameters())
      signature.emplace_back(parameter.raw_data(), parameter.requires_grad());
  return signature;
}

bool GraphedTrainStep::replayable(const Tensor& input, const Tensor& target) const {
  if (capture_failed_ || !model_.can_capture() || nn::forward_hook_installed()) return false;
  // A capture happens at the shapes the last eager step warmed up, a replay
  // at the captured shapes, with the parameters the capture saw.
  if (!captured_) return input.shape() == warm_input_ && target.shape() == warm_target_;
  return fits_static(input, target) && model_signature() == captured_signature_ && session_.still_fits();
}

void GraphedTrainStep::queue(const Tensor& input, const Tensor& target) {
  if (!warmed_up_ || !replayable(input, target)) {
    // Warm-up, or a step the capture cannot stand for: an ordinary step.
    pending_.losses = model_.train_step(input.to(device_), target.to(device_));
    warmed_up_ = true;
    warm_input_ = input.shape();
    warm_target_ = target.shape();
    return;
  }
  if (!captured_) {
    input_ = Tensor::empty(input.shape(), device_, input.dtype());
    target_ = Tensor::empty(target.shape(), device_, target.dtype());
    if (device_.is_cuda()) {
      const size_t largest = std::max({input.nbytes(), target.nbytes(), CaptureSession::kCapacity});
      uploads_ = std::make_unique<PinnedTransfers>(device_, largest, 2 * kUploadsPerStep);
      downloads_ = std::make_unique<PinnedTransfers>(device_, kPackedBytes, 3);
    }
  }
  upload(input_, input);
  upload(target_, target);
  if (!captured_) capture();
  else replay();
}

std::optional<StepLosses> GraphedTrainStep::finish() { return collect(take_pending()); }

GraphedTrainStep::Pending GraphedTrainStep::take_pending() {
  Pending taken = pending_;
  pending_ = Pending();
  return taken;
}

std::optional<StepLosses> GraphedTrainStep::collect(const Pending& pending) {
  if (pending.download < 0) return pending.losses;
  float packed[8];
  downloads_->collect(pending.download, packed, sizeof packed);
  return StepContext::unpack(std::vector<double>(packed, packed + 8));
}

StepLosses GraphedTrainStep::run(const Tensor& input, const Tensor& target) {
  (void)step(input, target);  // nothing pending before it: every run() collects its own
  std::optional<StepLosses> losses = finish();
  PIXGRAD_CHECK(losses.has_value(), "graphed step: the step gave no losses");
  return *losses;
}

void GraphedTrainStep::run_captured_step() {
  const CaptureSession::Scope scope(session_);
  packed_ = model_.enqueue_step(input_, target_);
}

void GraphedTrainStep::capture() {
  if (device_.is_cuda()) {
    graph_ = std::make_unique<CudaGraph>(device_);
    try {
      graph_->capture([this] { run_captured_step(); });
    } catch (...) {
      // Nothing ran: the host state goes back to before the step, and later
      // steps run eagerly.
      session_.rewind_to_capture();
      graph_.reset();
      capture_failed_ = true;
      throw;
    }
    session_.end_capture();  // the host state back to where the capture began
    captured_ = true;
    captured_signature_ = model_signature();
    replay();
    return;
  }
  // The stand-in's capture runs the step: with the counters then set back,
  // advancing them once makes this step 2, as a replay would. If it throws,
  // the step ran in part, as an eager step that throws does.
  try {
    run_captured_step();
  } catch (...) {
    capture_failed_ = true;
    throw;
  }
  captured_signature_ = model_signature();
  session_.end_capture();
  session_.advance();
  captured_ = true;
  pending_.losses = StepContext::unpack(packed_.to_double_vector());
}

void GraphedTrainStep::replay() {
  session_.advance();  // the host state one step on, and the values this step reads
  if (graph_) {
    if (session_.bytes_used() > 0)
      uploads_->upload(session_.device_values(), session_.host_values(), session_.bytes_used());
    graph_->launch();
    pending_.download = downloads_->download(packed_.raw_data(), kPackedBytes);
    return;
  }
  // The stand-in: the step again from the capture's host state, reading
  // only the replay values; then the host state as the replay left it.
  const std::vector<std::vector<uint64_t>> after = session_.positions();
  session_.rewind_to_capture();
  session_.start_rerun();
  try {
    run_captured_step();
  } catch (...) {
    session_.set_positions(after);
    throw;
  }
  session_.set_positions(after);
  pending_.losses = StepContext::unpack(packed_.to_double_vector());
}

}  // namespace pixgrad::models
