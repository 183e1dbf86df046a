// Training checkpoints: one safetensors file holding the model and optimiser
// tensors ("G.*", "D.*", "optimizer_G.*", "optimizer_D.*") and, as JSON
// metadata, the run's options and position (iteration, epoch, batches done,
// dropout RNG state), so that --resume continues exactly where the run
// stopped. Written atomically (temporary file + rename): a crash mid-write
// leaves the previous checkpoint intact.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include <pixgrad/core/safetensors.h>
#include <pixgrad/core/tensor.h>
#include <pixgrad/training/train_config.h>

namespace pixgrad::training {

struct TrainState {
  int64_t iteration = 0;     // completed training steps
  int64_t epoch = 0;         // the epoch in progress (0-based)
  int64_t batches_done = 0;  // batches of that epoch already consumed
  uint64_t rng_seed = 0;     // the default generator (dropout) ...
  uint64_t rng_offset = 0;   // ... and its position
};

struct Checkpoint {
  std::map<std::string, Tensor> tensors;
  TrainConfig config;
  TrainState state;
};

void save_checkpoint(const std::string& path, const std::map<std::string, Tensor>& tensors, const TrainConfig& config,
                     const TrainState& state);
// Throws a one-line pixgrad::Error naming the file for anything that is not
// a pixgrad pix2pix checkpoint (wrong format, truncated, missing metadata).
Checkpoint load_checkpoint(const std::string& path);
// The tensors whose names start with `prefix` ("G.", "D."), with it removed.
std::map<std::string, Tensor> tensors_with_prefix(const Checkpoint& checkpoint, const std::string& prefix);
// True for a checkpoint --resume can continue: the discriminator and both
// optimisers' state besides the generator (history checkpoints hold the
// generator alone).
bool holds_training_state(const Checkpoint& checkpoint);
// Fails unless every value of `tensors` is finite and every variance (Adam's
// exp_avg_sq, batch norm's running_var) is not negative: what a state must
// hold to be run. The message names the checkpoint at `path`, the tensor
// (`prefix` + its name) and the value, then gives `advice`.
void check_state_values(const std::string& path, const std::map<std::string, Tensor>& tensors,
                        const std::string& prefix, const std::string& advice);

// The same for a safetensors file already read (tests, fuzzing); `path` names it in errors.
Checkpoint read_checkpoint(const std::string& path, safetensors::File file);

}  // namespace pixgrad::training
