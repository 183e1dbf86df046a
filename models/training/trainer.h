// The pix2pix training loop, as thin as the Chainer trainer it follows: the
// loop steps the model; reporting is done by small pieces — the progress bar,
// log.jsonl, checkpoints, preview grids, the loss plot, evaluation — each on
// its own interval.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "models/pix2pix.h"
#include "models/training/checkpoint.h"
#include "models/training/train_config.h"

namespace pixgrad::training {

// Files the trainer writes into the output folder.
struct OutputFiles {
  explicit OutputFiles(const std::string& folder);
  std::string checkpoint, log, preview, loss_plot;
};

struct RunSummary {
  int64_t iterations = 0;   // total completed, resumed ones included
  bool interrupted = false;  // stopped by SIGINT/SIGTERM (checkpoint written)
  std::string output;        // the folder written to
};

class Trainer {
 public:
  // `resume`: a checkpoint to continue from ("" starts afresh); the run then
  // continues with the checkpoint's options (see merge_for_resume), changed
  // only where `explicit_fields` names a run-steering option of `config`.
  Trainer(TrainConfig config, const std::string& resume = "", const std::set<std::string>& explicit_fields = {});
  ~Trainer();
  RunSummary run();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Installs SIGINT/SIGTERM handlers that ask a running Trainer to save a
// checkpoint and stop after the current step.
void install_stop_handlers();

}  // namespace pixgrad::training
