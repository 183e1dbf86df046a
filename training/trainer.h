// The pix2pix training loop, as thin as the Chainer trainer it follows: the
// loop steps the model; reporting is done by small pieces — the progress bar,
// log.jsonl, checkpoints, preview grids, the loss plot, evaluation — each on
// its own interval.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <vector>

#include <pixgrad/distributed/communicator.h>
#include <pixgrad/models/pix2pix.h>
#include <pixgrad/training/checkpoint.h>
#include <pixgrad/training/train_config.h>

namespace pixgrad::training {

// Files the trainer writes into the output folder.
struct OutputFiles {
  explicit OutputFiles(const std::string& folder);
  std::string checkpoint;  // the last good state
  std::string diverged;    // the state after a step that went non-finite, for diagnosis
  std::string log, preview, loss_plot;
  std::string options;  // options.json: the run's options, as a reader of the folder wants them
  std::string page;     // index.html: the results page
  std::string previews;     // folder: the preview grid of every snapshot
  std::string checkpoints;  // folder: the generator every --save-epoch-freq epochs
};

struct RunSummary {
  int64_t iterations = 0;    // total completed, resumed ones included
  int64_t trained = 0;       // completed by this run() call
  bool interrupted = false;  // stopped by SIGINT/SIGTERM (checkpoint written)
  bool diverged = false;     // stopped at a non-finite loss or gradient (last good checkpoint kept)
  std::string output;        // the folder written to
};

class Trainer {
 public:
  // `resume`: a checkpoint to continue from ("" starts afresh); the run then
  // continues with the checkpoint's options (see merge_for_resume), changed
  // only where `explicit_fields` names a run-steering option of `config`
  // (a larger --epochs continues a finished run). A new run with
  // config.init_from starts from that checkpoint's weights (the generator,
  // and the discriminator where it holds one) with fresh optimisers. It
  // writes into config.output if `explicit_fields` names "output", else into
  // the checkpoint's own folder. A folder holding another run is refused
  // unless `overwrite` (see run_folder.h). Nothing is written until the first
  // step has completed.
  //
  // Data parallel: with a `world` of several ranks (distributed::join_world),
  // every rank constructs a Trainer with the same arguments and runs it.
  // Each rank trains on its own share of every batch (config.batch_size
  // images each), the gradients are averaged before every update, and the
  // losses reported are those of the whole global batch. Rank 0 alone
  // claims and writes the output folder (checkpoints, log, previews,
  // evaluation); every rank reads the checkpoint it resumes from, which
  // must come from a run with as many ranks.
  Trainer(TrainConfig config, const std::string& resume = "", const std::set<std::string>& explicit_fields = {},
          bool overwrite = false, std::shared_ptr<distributed::Communicator> world = nullptr);
  ~Trainer();
  // Trains; while it runs, Ctrl-C (SIGINT) and SIGTERM save a checkpoint and
  // stop after the current step. A non-finite loss or gradient stops the run
  // (RunSummary::diverged). An exception between two steps saves the steps
  // completed since the last checkpoint before it propagates.
  RunSummary run();
  // The model being trained (e.g. to observe or change gradients with
  // Pix2Pix::set_before_update).
  models::Pix2Pix& model();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};


}  // namespace pixgrad::training
