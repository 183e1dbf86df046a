// Everything that defines a training run. It is written into every checkpoint
// (as JSON metadata) so that a resumed run, or pix2pix_translate, rebuilds
// exactly the same model and data pipeline.
#pragma once

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace pixgrad::training {

// The --precision values (the CUDA convolutions' arithmetic, see
// kernels/cuda/conv2d.h), and the same as "fp32, tf32, 3xtf32 or bf16" for
// messages. Every program accepts them in every build.
const std::vector<std::string>& precision_names();
std::string precision_name_list();

struct TrainConfig {
  // data
  std::string dataset;             // root folder
  std::string format = "aligned";  // aligned | cmp
  std::string direction = "AtoB";  // aligned only: AtoB | BtoA
  std::string train_split = "train";
  std::string test_split = "test";
  std::string preprocess = "resize_and_crop";  // aligned only; see data::PreprocessMode
  int load_size = 286;
  int crop_size = 256;
  bool no_flip = false;
  int input_nc = 0;   // channels of the generator's input (0: the format's, aligned 3, cmp 12)
  int output_nc = 3;  // channels of its output
  int workers = 2;
  // model
  std::string preset = "paper";  // paper | chainer
  int ngf = 64;
  int ndf = 64;
  int num_downs = 0;      // 0: the preset's (paper 8, chainer 7)
  int n_layers = 3;       // paper discriminator
  std::string discriminator = "patch";  // paper: patch | pixel
  std::string norm = "batch";
  bool no_dropout = false;
  std::string gan_mode = "vanilla";  // vanilla | lsgan | hinge | wgangp (models/gan.h)
  bool sync_bn = false;              // data parallel: batch-norm statistics over every rank's batch
  // optimisation
  int batch_size = 1;                // per rank (process) of a data-parallel run
  int world_size = 1;                // ranks of the run (set from the launch, not an option)
  int epochs = 200;
  int decay_epochs = -1;             // linear schedule: epochs of decay at the end (-1: half of epochs)
  std::string schedule = "";         // linear | constant ("" = the preset's: paper linear, chainer constant)
  double lr = 2e-4;
  double beta1 = 0.5;
  double lambda_l1 = 100;
  uint64_t seed = 0;
  int64_t max_iterations = 0;        // stop after this many iterations in total (0 = run all epochs)
  std::string init_from;             // a checkpoint whose weights start this run (fine-tuning), "" = none
  // reporting
  std::string device = "auto";
  // The CUDA convolutions ("" = the environment's, else the default); a run
  // records the settings in effect here (Trainer), so a resume continues with them.
  std::string conv_impl;             // handwritten | cudnn | cublas
  bool tf32 = false;                 // the same as precision "tf32"
  std::string precision;             // one of precision_names()
  // Every step after the first replayed as one CUDA graph (models/graphed_step.h); on the CPU the
  // stand-in that checks the graph path, which gives the same numbers at eager cost.
  bool cuda_graph = false;
  double dist_timeout = 600;         // data parallel: seconds a rank waits for the others before the run stops
  std::string output = "out";
  int64_t log_interval = 100;        // iterations per log.jsonl record and console report
  int64_t snapshot_interval = 1000;  // iterations per checkpoint, preview grid and loss plot
  int64_t eval_interval = 0;         // iterations per test-split evaluation (0 = never)
  int preview_count = 5;             // test images in the preview grid
  int save_epoch_freq = 5;           // epochs per history checkpoint (the generator) in checkpoints/ (0 = none)
  int keep_checkpoints = 5;          // history checkpoints kept, newest first (0 = all)

  // The preset's schedule when `schedule` is empty.
  std::string effective_schedule() const;
  // Channels of the model's input and output for this dataset format.
  int64_t input_channels() const;
  int64_t output_channels() const;
};

nlohmann::json to_json(const TrainConfig& config);
// Reads what to_json wrote, as untrusted input: throws pixgrad::Error naming
// the field for a mistyped value, an integer out of its type's range, a
// non-finite number, or an overlong or unprintable string (missing fields
// keep their defaults).
TrainConfig config_from_json(const nlohmann::json& json);
// Strings of a configuration (paths, names): at most kMaxTextBytes, printable.
inline constexpr size_t kMaxTextBytes = 4096;
void check_text(const char* field, const std::string& text);
// The configuration a resumed run continues with: the checkpoint's, with the
// run-steering options (epochs and decay epochs, device, intervals...) taken
// from `requested` where they were given explicitly. The output folder is never the
// checkpoint's: the caller decides it from this command line. An explicitly given option
// that changes what is trained (preset, sizes, seed...) is an error naming it.
TrainConfig merge_for_resume(const TrainConfig& saved, const TrainConfig& requested,
                             const std::set<std::string>& explicit_fields, const std::string& checkpoint_path);
// The run-steering options a resumed run keeps from `resumed` (the merged
// configuration) because this command line did not give them, where they
// differ from the defaults, as options: "--max-iterations 3,
// --snapshot-interval 2" ("" if none). Location, device and arithmetic are
// left out: the start line shows them.
std::string steering_kept(const TrainConfig& resumed, const std::set<std::string>& explicit_fields);
// "crop_size" -> "crop-size": the command-line spelling of a field.
std::string option_name(const std::string& field);
// Checks ranges and combinations; throws a one-line pixgrad::Error.
void validate(const TrainConfig& config);

}  // namespace pixgrad::training
