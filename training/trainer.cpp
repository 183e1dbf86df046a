#include <pixgrad/training/trainer.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>

#include <nlohmann/json.hpp>
#include <omp.h>

#include <pixgrad/core/autograd.h>
#include <pixgrad/core/error.h>
#include <pixgrad/core/file_io.h>
#include <pixgrad/core/generator.h>
#include <pixgrad/core/cuda_info.h>
#include <pixgrad/distributed/agreement.h>
#include <pixgrad/distributed/mpi_communicator.h>
#include <pixgrad/distributed/nccl_communicator.h>
#include <pixgrad/layers/sync_batch_norm.h>
#include <pixgrad/models/graphed_step.h>
#include <pixgrad/optim/schedule.h>
#include <pixgrad/data/loader.h>
#include <pixgrad/training/html_report.h>
#include <pixgrad/training/preview.h>
#include <pixgrad/training/metrics.h>
#include <pixgrad/training/model_factory.h>
#include <pixgrad/training/progress.h>
#include <pixgrad/training/run_folder.h>
#include <pixgrad/training/run_history.h>
#include <pixgrad/training/run_log.h>

namespace pixgrad::training {

namespace {

namespace fs = std::filesystem;

std::atomic<bool> stop_requested{false};

// A folder of the run (previews/, checkpoints/); a link there is refused, as
// writing through it would put the run's files somewhere else.
void create_folder(const std::string& folder) {
  std::error_code error;
  PIXGRAD_CHECK(!fs::is_symlink(folder, error), "folder '", io::printable(folder),
                "' is a link: a run writes only into its own folders; remove the link");
  fs::create_directories(folder, error);
  PIXGRAD_CHECK(!error, "folder '", io::printable(folder), "': cannot create it: ", error.message());
}

extern "C" void request_stop(int) { stop_requested = true; }

// Ctrl-C, SIGTERM, SIGUSR1 and SIGUSR2 ask the loop to save and stop, while
// the loop runs; before and after it they end the program as usual (so a
// start that hangs on a slow file can still be interrupted). SIGUSR1 is
// the one to send mpirun: it passes that signal on to every rank, where
// SIGINT and SIGTERM make it kill the ranks about a second later.
class StopHandlers {
 public:
  StopHandlers() {
    stop_requested = false;
    for (size_t i = 0; i < kSignals.size(); ++i) previous_[i] = std::signal(kSignals[i], request_stop);
  }
  ~StopHandlers() {
    for (size_t i = 0; i < kSignals.size(); ++i) std::signal(kSignals[i], previous_[i]);
  }
  StopHandlers(const StopHandlers&) = delete;
  StopHandlers& operator=(const StopHandlers&) = delete;

 private:
  static constexpr std::array<int, 4> kSignals = {SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
  std::array<void (*)(int), 4> previous_{};
};

// Running means of the step losses between two log records.
// A training step, for what is shown and logged of it once its losses are known.
struct StepRecord {
  int64_t iteration = 0;       // counted from 1
  int64_t epoch = 0;           // counted from 0
  int64_t global_samples = 0;  // images over every rank
  double share = 0;            // this rank's share of them
  std::chrono::steady_clock::time_point started;  // when the host began it (reading its batch)
};

struct LossMeans {
  models::StepLosses sum;
  int64_t count = 0;
  double seconds = 0;
  void add(const models::StepLosses& l, double step_seconds) {
    sum.g_total += l.g_total;
    sum.g_adv += l.g_adv;
    sum.g_l1 += l.g_l1;
    sum.d_total += l.d_total;
    sum.d_real += l.d_real;
    sum.d_fake += l.d_fake;
    seconds += step_seconds;
    ++count;
  }
};

// The folder a checkpoint lies in ("." for a bare file name).
std::string folder_of(const std::string& file) {
  const fs::path parent = fs::path(file).parent_path();
  return parent.empty() ? "." : parent.string();
}

bool same_folder(const std::string& a, const std::string& b) {
  std::error_code error;
  return fs::weakly_canonical(a, error) == fs::weakly_canonical(b, error);
}

bool inside(const fs::path& folder, const fs::path& path) {
  const auto [end, unused] = std::mismatch(folder.begin(), folder.end(), path.begin(), path.end());
  return end == folder.end();
}

// Previews and checkpoints written inside the dataset would be read back as
// data. The dataset's folder and each split's folder are compared with their
// links resolved (a split may be a link to a folder elsewhere).
void check_output_outside_dataset(const TrainConfig& config) {
  std::error_code error;
  if (config.dataset.empty() || !fs::exists(config.dataset, error)) return;
  const fs::path output = fs::weakly_canonical(config.output, error);
  for (const fs::path& data : {fs::path(config.dataset), fs::path(config.dataset) / config.train_split,
                               fs::path(config.dataset) / config.test_split}) {
    if (!fs::exists(data, error)) continue;
    PIXGRAD_CHECK(!inside(fs::weakly_canonical(data, error), output), "--output '", io::printable(config.output),
                  "' lies inside the dataset ('", io::printable(data.string()),
                  "'): its previews would become training data; choose a folder elsewhere");
  }
}

// Where a run writes a file (or keeps a folder of its history), refused
// before any step if a write there would fail or go astray: a link (the
// run's files would land somewhere else), or an entry of the other kind.
void check_entry(const std::string& path, bool folder) {
  std::error_code error;
  const fs::file_status status = fs::symlink_status(path, error);
  PIXGRAD_CHECK(!fs::is_symlink(status), folder ? "folder '" : "'", io::printable(path), "' is a link: a run writes ",
                folder ? "only into its own folders" : "only its own files", "; remove the link");
  PIXGRAD_CHECK(!fs::exists(status) || (folder ? fs::is_directory(status) : fs::is_regular_file(status)), "'",
                io::printable(path), folder ? "' is not a folder, and the run keeps its history there"
                                            : "' is not a regular file, and the run writes one there",
                "; move it away");
}

// Each rank's dropout stream: rank 0's is the single-process one, so that a
// world of one trains exactly as before; the others are far from it.
uint64_t rank_stream(uint64_t rank0_seed, int rank) {
  return rank0_seed + static_cast<uint64_t>(rank) * 0x9E3779B97F4A7C15ull;
}

bool all_finite(const std::map<std::string, Tensor>& tensors) {
  for (const auto& [name, tensor] : tensors)
    for (const double v : tensor.to_double_vector())
      if (!std::isfinite(v)) return false;
  return true;
}

}  // namespace

OutputFiles::OutputFiles(const std::string& folder) {
  const fs::path root(folder);
  checkpoint = (root / "checkpoint.safetensors").string();
  diverged = (root / "checkpoint.diverged.safetensors").string();
  log = (root / "log.jsonl").string();
  preview = (root / "preview.png").string();
  loss_plot = (root / "loss.png").string();
  options = (root / "options.json").string();
  page = (root / "index.html").string();
  previews = (root / "previews").string();
  checkpoints = (root / "checkpoints").string();
}

struct Trainer::Impl {
  TrainConfig config;
  std::shared_ptr<distributed::Communicator> world;
  bool root = true;  // rank 0, the one that writes
  OutputFiles files;
  bool resumed = false;
  std::string kept_steering;  // a resume: the run's own steering options this command line left as they were
  Device device;
  std::shared_ptr<data::Dataset> train_set, test_set;
  std::unique_ptr<models::Pix2Pix> model;
  std::unique_ptr<models::GraphedTrainStep> graphed;  // --cuda-graph
  TrainState state;
  std::unique_ptr<optim::Schedule> schedule;
  std::unique_ptr<RunFolder> folder;
  std::unique_ptr<RunLog> log;
  bool started = false;          // the log holds this invocation's start (or resume) event
  int64_t start_iteration = 0;   // where this invocation began (the checkpoint's iteration)
  int64_t saved_iteration = -1;  // of the last checkpoint this invocation wrote
  int64_t per_epoch = 0;          // batches per epoch
  bool in_step = false;           // between the start of a step and the agreement on its outcome
  std::shared_ptr<distributed::MpiCommunicator> mpi_world;  // the MPI ranks, under NCCL for CUDA ranks
  int64_t total_iterations = 0;   // where this invocation stops

  // Each rank prepares on its own (everything that can fail is checked
  // before the output folder is touched, and rank 0 claims the folder
  // last); then the ranks agree that all of them are ready and were started
  // alike, and only then join their networks. Nothing is written into the
  // folder before the first step has completed.
  Impl(const TrainConfig& requested, const std::string& resume, const std::set<std::string>& explicit_fields,
       bool overwrite, std::shared_ptr<distributed::Communicator> ranks)
      : config(requested),
        world(ranks ? std::move(ranks) : distributed::single_process()),
        root(world->is_root()),
        files(requested.output) {
    std::exception_ptr failure;
    std::vector<distributed::Fingerprint> properties;
    try {
      prepare(requested, resume, explicit_fields, overwrite);
      properties = fingerprint();
    } catch (...) {
      failure = std::current_exception();
    }
    // The agreements wait no longer than the run's timeout (this command
    // line's when the options could not be read).
    use_timeout(failure ? requested.dist_timeout : config.dist_timeout);
    distributed::agree_all_succeeded(*world, failure, "start");
    distributed::agree_alike(*world, properties);
    join_ranks();
  }

  void use_timeout(double seconds) {
    mpi_world = std::dynamic_pointer_cast<distributed::MpiCommunicator>(world);
    if (mpi_world && std::isfinite(seconds) && seconds >= 1 && seconds <= 1e6) mpi_world->set_timeout_seconds(seconds);
  }

  void prepare(const TrainConfig& requested, const std::string& resume, const std::set<std::string>& explicit_fields,
               bool overwrite) {
    PIXGRAD_CHECK(!resume.empty() || !requested.dataset.empty(), "--dataset is required (unless --resume)");
    std::optional<Checkpoint> checkpoint;
    PIXGRAD_CHECK(resume.empty() || !explicit_fields.count("init_from"), "--init-from starts a new run and --resume "
                  "continues one: give one of them");
    if (!resume.empty()) {
      checkpoint = load_checkpoint(resume);
      PIXGRAD_CHECK(holds_training_state(*checkpoint), "checkpoint '", io::printable(resume),
                    "': it holds the generator alone (a history checkpoint), not a state to resume; resume from "
                    "checkpoint.safetensors, or start a new run from these weights with --init-from");
      config = merge_for_resume(checkpoint->config, requested, explicit_fields, resume);
      kept_steering = steering_kept(config, explicit_fields);
      // Where this run writes comes from this command line, never from the
      // checkpoint; without --output, the folder of a run's own checkpoint
      // (any other file may sit among a user's files).
      if (!explicit_fields.count("output")) {
        const char* give_output = ": give --output (a new folder, or the folder of the run it came from)";
        PIXGRAD_CHECK(!fs::is_symlink(resume), "checkpoint '", io::printable(resume), "' is a link, and the "
                      "folder of a link is not taken for a run's files", give_output);
        PIXGRAD_CHECK(fs::path(resume).filename() == fs::path(OutputFiles(".").checkpoint).filename(),
                      "checkpoint '", io::printable(resume), "' is not a run folder's own checkpoint.safetensors, "
                      "so its folder is not taken for this run's files", give_output);
      }
      config.output = explicit_fields.count("output") ? requested.output : folder_of(resume);
      resumed = true;
      PIXGRAD_CHECK(config.world_size == world->size(), "checkpoint '", io::printable(resume), "': it was trained "
                    "on ", config.world_size, " rank(s), this run has ", world->size(), "; resume it with as many "
                    "ranks, or start a new run from its weights with --init-from");
    }
    config.world_size = world->size();
    // An explicit --tf32=false on a new run means fp32, whatever the environment says.
    if (!resumed && explicit_fields.count("tf32") && !config.tf32 && config.precision.empty()) config.precision = "fp32";
    try {
      validate(config);
    } catch (const Error& error) {
      if (!resumed) throw;
      fail("checkpoint '", io::printable(resume), "' with this command line: ", error.what());
    }
    if (!resumed && !config.dataset.empty()) {
      // Stored as an absolute path, so that a resume from another directory finds it.
      std::error_code error;
      const fs::path absolute = fs::absolute(config.dataset, error);
      if (!error) config.dataset = absolute.lexically_normal().string();
    }
    if (resumed && !explicit_fields.count("dataset") && !fs::exists(config.dataset))
      fail("the dataset '", io::printable(config.dataset), "' named in checkpoint '", io::printable(resume),
           "' is not there: give --dataset");
    check_output_outside_dataset(config);
    device = Device::parse(config.device);
    if (device.is_cuda() && world->size() > 1) {  // this machine's GPU number local_rank
      std::string reason;
      device = distributed::nccl_rank_device(device, world->local_rank(), cuda_device_count(&reason));
    }
    // The settings in effect (the environment's where the options gave none) are the run's: options.json,
    // the ranks' fingerprint and a resumed run see what was computed, never "".
    config.conv_impl = select_conv_impl(config.conv_impl);
    config.precision = select_precision(config.precision, config.tf32);
    config.tf32 = config.precision == "tf32";
    train_set = make_dataset(config, config.train_split, true);
    test_set = make_dataset(config, config.test_split, false);

    manual_seed(config.seed);  // parameter initialisation
    model = std::make_unique<models::Pix2Pix>(pix2pix_options(config));
    const int64_t multiple = model->options().generator.size_multiple();
    const bool fixed_crop = config.preprocess != "none" && config.preprocess != "scale_width";
    PIXGRAD_CHECK(!fixed_crop || config.crop_size % multiple == 0, "--crop-size ", config.crop_size,
                  " must be a multiple of ", multiple, " for a U-Net with ", model->options().generator.num_downs,
                  " downsamplings");
    model->to(device);
    // Dropout draws from the default generator, on a stream of its own (one per rank).
    default_generator().set_state(rank_stream(config.seed ^ 0x5DEECE66Dull, world->rank()), 0);
    if (checkpoint) {
      check_state_values(resume, checkpoint->tensors, "", "resume from an earlier checkpoint");
      try {
        model->load_state_dict(checkpoint->tensors);
      } catch (const Error& error) {
        fail("checkpoint '", io::printable(resume), "': ", error.what(), " (its tensors do not match the networks "
             "its options describe: a damaged or hand-edited checkpoint)");
      }
      state = checkpoint->state;
      start_iteration = state.iteration;
      const int64_t begun = state.epoch + (state.batches_done > 0 ? 1 : 0);  // epochs the run has begun
      PIXGRAD_CHECK(begun <= config.epochs, "checkpoint '", io::printable(resume), "': the run has begun ", begun,
                    " epochs, more than --epochs ", config.epochs, "; give --epochs ", begun,
                    " or more to continue it");
      default_generator().set_state(rank_stream(state.rng_seed, world->rank()), state.rng_offset);
    } else if (!config.init_from.empty()) {
      initialise_from(config.init_from);
    }
    if (config.effective_schedule() == "constant") {
      schedule = std::make_unique<optim::ConstantSchedule>();
    } else {
      const int decay = config.decay_epochs >= 0 ? config.decay_epochs : config.epochs / 2;
      schedule = std::make_unique<optim::LinearDecaySchedule>(config.epochs - decay, decay);
    }
    per_epoch = static_cast<int64_t>(
        data::global_batch_sizes(train_set->size(), static_cast<size_t>(config.batch_size), world->size(), false)
            .size());
    PIXGRAD_CHECK(per_epoch > 0, "dataset '", io::printable(config.dataset), "': split '",
                  io::printable(config.train_split), "' has no images");
    PIXGRAD_CHECK(state.batches_done <= per_epoch && state.iteration == state.epoch * per_epoch + state.batches_done,
                  resumed ? "checkpoint '" + io::printable(resume) + "': its" : std::string("the checkpoint's"),
                  " position (iteration ", state.iteration, ", ", state.batches_done,
                  " batches into epoch ", state.epoch, ") does not fit this dataset's ", per_epoch,
                  " batches per epoch (has the dataset or --batch-size changed?)");
    check_model_fits();
    if (!root) return;  // the output folder is rank 0's

    // Continuing the folder's own run means resuming its own checkpoint file;
    // any other checkpoint resumed there would replace that run.
    const bool continuing =
        checkpoint && same_folder(resume, (fs::path(config.output) / "checkpoint.safetensors").string());
    folder = std::make_unique<RunFolder>(config.output, continuing, overwrite);
    files = OutputFiles(config.output);
    for (const std::string& own : {files.previews, files.checkpoints}) check_entry(own, true);
    for (const std::string& own : {files.checkpoint, files.diverged, files.log, files.preview, files.loss_plot,
                                   files.options, files.page})
      check_entry(own, false);
    if (continuing || folder->replaces_a_run()) remove_unfinished_writes();
    log = std::make_unique<RunLog>(files.log);
    if (folder->replaces_a_run())
      std::printf("--overwrite: this run replaces the run in '%s' (its log is kept, above this run's)\n",
                  io::printable(config.output).c_str());
  }

  // A run killed while writing leaves the temporaries of its atomic writes
  // behind. Called only for a folder that held a run, whose lock this run
  // now holds, so no other run is writing them (pix2pix_translate takes no
  // lock: an output folder holding a run is no place for its results).
  // Only names the run itself writes are touched.
  void remove_unfinished_writes() const {
    const auto name_of = [](const std::string& path) { return fs::path(path).filename().string(); };
    const std::set<std::string> own = {name_of(files.checkpoint), name_of(files.diverged), name_of(files.preview),
                                       name_of(files.loss_plot),  name_of(files.options),  name_of(files.page)};
    const size_t removed =
        io::remove_unfinished_writes(config.output, [&](const std::string& name) { return own.count(name) > 0; }).size() +
        io::remove_unfinished_writes(files.previews, is_preview_name).size() +
        io::remove_unfinished_writes(files.checkpoints, is_history_checkpoint_name).size();
    if (removed > 0)
      std::printf("removed %zu unfinished temporary file(s) that a stopped run left in '%s'\n", removed,
                  io::printable(config.output).c_str());
  }

  // What must be alike on every rank for the replicas to stay alike: the
  // options that shape the networks, the data and the steps (not where
  // files are, how many loader threads a rank runs, or its timeout), the
  // training split, the position in the run, and every parameter and
  // optimiser number, whether initialised, resumed or loaded --init-from.
  std::vector<distributed::Fingerprint> fingerprint() const {
    std::vector<distributed::Fingerprint> properties;
    if (world->size() == 1) return properties;
    // The device as it resolved ("auto" is a CPU on one machine and a GPU on another).
    const std::set<std::string> per_rank = {"dataset", "output", "init_from", "workers", "dist_timeout", "device"};
    properties.push_back({"the device kind (--device)", distributed::digest_of(std::string(device.is_cuda() ? "cuda" : "cpu"))});
    const nlohmann::json options = to_json(config);
    for (const auto& [field, value] : options.items()) {
      if (per_rank.count(field)) continue;
      std::string option = "--" + field;
      std::replace(option.begin(), option.end(), '_', '-');
      properties.push_back({option, distributed::digest_of(value.dump())});
    }
    properties.push_back({"the training split's size", train_set->size()});
    properties.push_back({"the training split's files (names and sizes)", train_set->content_digest()});
    const data::Example first = train_set->get(0, config.seed);
    properties.push_back({"the training split's first image pair",
                          distributed::digest_of(first.target, distributed::digest_of(first.input) ^ distributed::digest_of(first.name))});
    const std::string position = std::to_string(state.iteration) + " " + std::to_string(state.epoch) + " " +
                                 std::to_string(state.batches_done) + " " + std::to_string(state.rng_seed) + " " +
                                 std::to_string(state.rng_offset);
    properties.push_back({"the checkpoint's position in the run", distributed::digest_of(position)});
    uint64_t numbers = 0;
    for (const auto& [name, tensor] : model->state_dict()) numbers = distributed::digest_of(tensor, numbers);
    properties.push_back({"the networks' parameters and optimiser state", numbers});
    return properties;
  }

  // The ranks' networks join: the run's timeout for every collective from
  // now on, NCCL for CUDA ranks where the build has it, batch norm
  // synchronised if asked, and the gradients averaged in every step.
  void join_ranks() {
    if (world->size() == 1) {
      if (config.sync_bn)
        say("note: --sync-bn has no effect in a single process (run the ranks under mpirun or srun)\n");
      return;
    }
    if (device.is_cuda()) {
      if (mpi_world && distributed::built_with_nccl())
        world = distributed::make_nccl_communicator(mpi_world, device);
      else
        say("note: this build has no NCCL: the CUDA ranks' gradients go through the host and MPI\n");
    }
    if (config.sync_bn) {
      nn::synchronize_batch_norm(model->generator(), world);
      nn::synchronize_batch_norm(model->discriminator(), world);
    }
    model->set_data_parallel(world);
  }

  double learning_rate(int64_t epoch) const { return config.lr * schedule->factor(static_cast<int>(epoch)); }

  // Runs `body`, then restores G's and D's buffers (running statistics) and
  // the dropout stream, so that previews, evaluation and checks never change
  // the run.
  template <typename Body>
  void without_side_effects(Body body) {
    std::vector<std::pair<Tensor, Tensor>> saved;
    for (nn::Module* module : {static_cast<nn::Module*>(&model->generator()),
                               static_cast<nn::Module*>(&model->discriminator())})
      for (const auto& [name, buffer] : module->named_buffers()) saved.emplace_back(buffer, buffer.clone());
    const Generator rng = default_generator();
    body();
    for (auto& [buffer, copy] : saved) buffer.copy_(copy);
    default_generator() = rng;
  }

  // One forward pass of G and D at the run's crop and batch size, so that
  // options that pass validation but do not fit the networks (a PatchGAN
  // deeper than the crop, batch norm over a single value) fail now, with the
  // options named, rather than at the first step.
  // Batches come in the full size and, when the split does not divide
  // evenly, one smaller last one (on several ranks, a rank's share of it may
  // be one larger or smaller); previews and evaluation run G on one image.
  void check_model_fits() {
    const Shape train_shape = first_example_shape(*train_set);
    without_side_effects([&] {
      NoGradGuard no_grad;
      model->generator().train();
      model->discriminator().train();
      const std::set<int64_t> batches = rank_batch_sizes();
      for (const int64_t batch : batches)
        fits(batch, train_shape, true,
             batch == *batches.rbegin() ? "a larger --batch-size"
                                        : "a --batch-size that leaves the epoch's last batch more images");
      if ((config.preview_count > 0 || config.eval_interval > 0) && test_set->size() > 0)
        fits(1, test_set->get(0, config.seed).input.shape(), false,  // test images keep their shape
             "--preview-count 0 and --eval-interval 0 (they run G on one test image at a time)");
    });
  }

  // The sizes of this rank's batches over an epoch (see data/loader.h).
  std::set<int64_t> rank_batch_sizes() const {
    std::set<int64_t> sizes;
    const int ranks = world->size();
    for (const size_t global : data::global_batch_sizes(train_set->size(), static_cast<size_t>(config.batch_size),
                                                        ranks, false)) {
      const size_t base = global / static_cast<size_t>(ranks), extra = global % static_cast<size_t>(ranks);
      if (world->rank() < static_cast<int>(extra)) sizes.insert(static_cast<int64_t>(base + 1));
      else if (base > 0) sizes.insert(static_cast<int64_t>(base));
    }
    return sizes;
  }

  // [C, H, W] of a dataset's first example: every example's with a fixed
  // crop; with --preprocess none or scale_width, the first image's.
  Shape first_example_shape(const data::Dataset& dataset) const {
    if (config.preprocess != "none" && config.preprocess != "scale_width")
      return {config.input_channels(), config.crop_size, config.crop_size};
    return dataset.get(0, config.seed).input.shape();
  }

  // `other_batch` is the advice on the batch size for this batch.
  void fits(int64_t batch, const Shape& example, bool with_discriminator, const std::string& other_batch) {
    const std::string sizes = "a batch of " + std::to_string(batch) + " images of " + std::to_string(example[2]) +
                              "x" + std::to_string(example[1]) + " (preset " + config.preset + ", --preprocess " +
                              config.preprocess + ", --crop-size " + std::to_string(config.crop_size) +
                              ", --batch-size " + std::to_string(config.batch_size);
    const Tensor input = Tensor::zeros({batch, example[0], example[1], example[2]}, device);
    Tensor fake;
    try {
      fake = model->generator().forward(input);
    } catch (const Error& error) {
      fail("the generator does not fit ", sizes, ", --num-downs ", model->options().generator.num_downs,
           "): ", error.what(), "; use a larger --crop-size, fewer --num-downs, or ", other_batch);
    }
    if (!with_discriminator) return;
    // Only the paper preset's PatchGAN has a depth to choose.
    const bool has_depth = config.preset == "paper" && config.discriminator == "patch";
    try {
      model->discriminator().forward(input, fake);
    } catch (const Error& error) {
      fail("the discriminator does not fit ", sizes,
           has_depth ? ", --n-layers " + std::to_string(config.n_layers) : std::string(), "): ", error.what(),
           "; use a larger --crop-size, ", has_depth ? "fewer --n-layers, " : "", "or ", other_batch);
    }
  }

  // Starts the networks from another run's weights (fine-tuning): the
  // generator, and the discriminator where the checkpoint holds one; the
  // optimisers start afresh.
  void initialise_from(const std::string& path) {
    const Checkpoint source = load_checkpoint(path);
    const TrainConfig& trained = source.config;
    PIXGRAD_CHECK(trained.input_channels() == config.input_channels() &&
                      trained.output_channels() == config.output_channels(),
                  "--init-from '", io::printable(path), "': it was trained with ", trained.input_channels(),
                  " input and ", trained.output_channels(), " output channels, this run has ", config.input_channels(),
                  " and ", config.output_channels(), " (--format, --input-nc, --output-nc)");
    check_state_values(path, source.tensors, "", "start from an earlier checkpoint");
    const std::map<std::string, Tensor> generator = tensors_with_prefix(source, "G.");
    const std::map<std::string, Tensor> discriminator = tensors_with_prefix(source, "D.");
    PIXGRAD_CHECK(!generator.empty(), "--init-from '", io::printable(path), "': it holds no generator weights");
    try {
      model->generator().load_state_dict(generator);
      if (!discriminator.empty()) model->discriminator().load_state_dict(discriminator);
    } catch (const Error& error) {
      fail("--init-from '", io::printable(path), "': ", error.what(), " (it was trained with --preset ",
           trained.preset, " --ngf ", trained.ngf, " --ndf ", trained.ndf, " --num-downs ", trained.num_downs,
           " --n-layers ", trained.n_layers, " --norm ", trained.norm, "; the networks must match)");
    }
    std::printf("starting from the weights in '%s' (%s; fresh optimisers)\n", io::printable(path).c_str(),
                discriminator.empty() ? "the generator; a new discriminator" : "generator and discriminator");
  }

  // The first write of this invocation: the event that tells a reader of
  // the log where this run's records begin.
  void ensure_started() {
    if (started || !root) return;
    started = true;
    // A run that replaces another (--overwrite) starts the log afresh, resumed or not.
    const bool starts = !resumed || folder->replaces_a_run();
    // options.json keeps the precision asked for; this is what computes.
    nlohmann::json event = {{"event", starts ? "start" : "resume"},
                            {"iteration", start_iteration},
                            {"convolutions", describe_convolutions(device, config.precision, config.conv_impl)}};
    if (starts) event["options"] = to_json(config);
    log->write(event);
    if (starts) move_history_aside();
    const std::string options = to_json(config).dump(2) + "\n";
    io::write_file_atomically(files.options, "options", [&](std::FILE* file) {
      return std::fwrite(options.data(), 1, options.size(), file) == options.size();
    });
  }

  // A new run in a folder that held another (--overwrite) keeps that run's
  // previews and history checkpoints, but under other names, so that they
  // are not taken for this run's: previews.replaced-1/, checkpoints.replaced-1/.
  void move_history_aside() {
    for (const std::string& folder : {files.previews, files.checkpoints}) {
      std::error_code error;
      if (!fs::exists(fs::symlink_status(folder, error))) continue;
      std::string aside;
      for (int n = 1; aside.empty() || fs::exists(fs::symlink_status(aside, error)); ++n)
        aside = folder + ".replaced-" + std::to_string(n);
      fs::rename(folder, aside, error);
      PIXGRAD_CHECK(!error, "cannot move the replaced run's '", io::printable(folder), "' to '", io::printable(aside),
                    "': ", error.message());
      std::printf("the replaced run's %s are now in '%s'\n", fs::path(folder).filename().c_str(),
                  io::printable(aside).c_str());
    }
  }

  // Writes the state to `path` and says whether every number in it is finite.
  bool write_checkpoint(const std::string& path) {
    state.rng_seed = default_generator().seed();
    state.rng_offset = default_generator().offset();
    const std::map<std::string, Tensor> tensors = model->state_dict();
    const bool finite = all_finite(tensors);
    // A state that is not finite never replaces the last good checkpoint.
    save_checkpoint(finite ? path : files.diverged, tensors, config, state);
    return finite;
  }

  // Saves the checkpoint; false (and the state written aside) if the
  // parameters are no longer finite, which a caller treats as divergence.
  bool save() {
    ensure_started();
    if (!write_checkpoint(files.checkpoint)) return false;
    saved_iteration = state.iteration;
    return true;
  }

  // G(x) for one test example, as a [C, H, W] tensor on the CPU.
  Tensor generate(const data::Example& example) {
    const Tensor& x = example.input;
    const Tensor fake = model->translate(x.reshape({1, x.size(0), x.size(1), x.size(2)}));
    return fake.to(Device::cpu()).reshape(example.target.shape());
  }

  void write_preview() {
    if (config.preview_count == 0 || test_set->size() == 0) return;
    std::vector<std::vector<data::Image>> rows;
    without_side_effects([&] {
      for (size_t i = 0; i < std::min<size_t>(static_cast<size_t>(config.preview_count), test_set->size()); ++i) {
        const data::Example example = test_set->get(i, config.seed);
        const Tensor generated = generate(example);
        rows.push_back({tensor_to_image(example.input), tensor_to_image(generated),
                        tensor_to_image(example.target)});
      }
    });
    const Image grid = make_grid(rows, 4);
    data::save_png(files.preview, grid);
    create_folder(files.previews);
    data::save_png((fs::path(files.previews) / preview_name(state.iteration)).string(), grid);
  }

  // Each loss against the iteration, one panel each, so that L1 (about 0.1)
  // is not flattened by the adversarial terms (about 1).
  std::vector<Series> loss_series() const {
    const std::vector<std::pair<const char*, const char*>> losses = {
        {"G adversarial", "loss_G_adv"}, {"G L1", "loss_L1"}, {"D", "loss_D"}};
    std::vector<Series> series;
    for (const auto& [title, key] : losses) {
      Series line{title, {}, {}};
      for (const nlohmann::json& record : log->training_records()) {
        const auto found = record.find(key);
        line.x.push_back(record["iteration"].get<double>());
        line.y.push_back(found != record.end() && found->is_number() ? found->get<double>() : NAN);
      }
      series.push_back(std::move(line));
    }
    return series;
  }

  void write_loss_plot() {
    if (log->training_records().empty()) return;
    data::save_png(files.loss_plot, plot_losses(loss_series(), 640, 480));
  }

  // index.html: the loss curves, the evaluations and every snapshot's
  // preview, rewritten at each snapshot.
  void write_page(const std::string& status) {
    RunPage page;
    page.title = fs::path(config.output).lexically_normal().filename().string();
    if (page.title.empty() || page.title == ".") page.title = "pix2pix run";
    page.options = to_json(config);
    page.training_records = log->training_records();
    page.eval_records = log->evaluation_records();
    for (const HistoryFile& preview : list_previews(files.previews)) {
      if (preview.number > state.iteration) continue;  // from a branch of the run that a resume superseded
      // The epoch (counted from 1) in which the snapshot's iteration ran.
      page.snapshots.push_back({preview.number, per_epoch > 0 ? (std::max<int64_t>(preview.number, 1) - 1) / per_epoch + 1 : 1,
                                (fs::path("previews") / fs::path(preview.path).filename()).string()});
    }
    page.status = status;
    write_run_page(files.page, page);
  }

  std::string progress_status() const {
    char text[160];
    std::snprintf(text, sizeof text, "iteration %lld of %lld (epoch %lld of %d)",
                  static_cast<long long>(state.iteration), static_cast<long long>(total_iterations),
                  static_cast<long long>(std::min<int64_t>(state.epoch + 1, config.epochs)), config.epochs);
    return text;
  }

  // Every rank calls it at the same iterations; rank 0 writes, and every
  // rank learns whether the state it wrote was finite.
  bool snapshot(const std::string& status = "") {
    bool finite = true;
    if (root && (finite = save())) {
      write_preview();
      write_loss_plot();
      write_page(status.empty() ? "running: " + progress_status() : status);
    }
    return all_ranks_agree(finite, "the snapshot's verdict");
  }

  // Whether `ok` holds on every rank (one collective; true alone).
  bool all_ranks_agree(bool ok, const std::string& what) {
    std::vector<double> failed = {ok ? 0.0 : 1.0};
    world->all_reduce(failed, distributed::ReduceOp::Sum, what);
    return failed[0] == 0;
  }

  // At the end of every --save-epoch-freq-th epoch: the generator (what
  // translation and fine-tuning need) into checkpoints/, and the oldest
  // beyond --keep-checkpoints removed.
  void save_history(int64_t completed_epochs) {
    if (!root || config.save_epoch_freq == 0 || completed_epochs % config.save_epoch_freq != 0) return;
    std::map<std::string, Tensor> generator;
    for (auto& [name, tensor] : model->generator().state_dict()) generator.emplace("G." + name, tensor);
    if (!all_finite(generator)) return;  // the next step's check reports the divergence
    ensure_started();
    create_folder(files.checkpoints);
    TrainState at_epoch_end = state;
    at_epoch_end.epoch = completed_epochs;
    at_epoch_end.batches_done = 0;
    save_checkpoint((fs::path(files.checkpoints) / history_checkpoint_name(completed_epochs)).string(), generator,
                    config, at_epoch_end);
    prune_history_checkpoints(files.checkpoints, config.keep_checkpoints, completed_epochs);
  }

  void evaluate() {
    if (!root) return;
    double l1 = 0, peak = 0, structure = 0;
    size_t count = 0;
    without_side_effects([&] {
      for (size_t i = 0; i < test_set->size(); ++i) {
        const data::Example example = test_set->get(i, config.seed);
        const Tensor generated = generate(example);
        l1 += mean_absolute_error(generated, example.target);
        peak += psnr(generated, example.target);
        structure += ssim(generated, example.target);
        ++count;
      }
    });
    if (count == 0) return;
    log->write({{"iteration", state.iteration},
                {"epoch", state.epoch},
                {"eval", {{"split", config.test_split}, {"images", count}, {"l1", l1 / count},
                          {"psnr", peak / count}, {"ssim", structure / count}}}});
  }

  void log_training(LossMeans& means) {
    const double n = static_cast<double>(means.count);
    if (root)
      log->write({{"iteration", state.iteration},
                  {"epoch", state.epoch},
                  {"loss_G", means.sum.g_total / n},
                  {"loss_G_adv", means.sum.g_adv / n},
                  {"loss_L1", means.sum.g_l1 / n},
                  {"loss_D", means.sum.d_total / n},
                  {"loss_D_real", means.sum.d_real / n},
                  {"loss_D_fake", means.sum.d_fake / n},
                  {"lr", learning_rate(state.epoch)},
                  {"seconds_per_iteration", means.seconds / n}});
    means = LossMeans();
  }

  // A step whose losses or gradients are not finite: the run stops. The
  // diverged state is written aside for diagnosis; the last good checkpoint
  // stays as it is.
  RunSummary diverge(const std::string& what, RunSummary summary) {
    summary.iterations = state.iteration;
    summary.trained = state.iteration - start_iteration;
    summary.diverged = true;
    summary.output = config.output;
    if (!root) return summary;
    ensure_started();
    write_checkpoint(files.diverged);
    log->write({{"event", "diverged"}, {"iteration", state.iteration}, {"epoch", state.epoch}, {"detail", what}});
    std::printf("\ndiverged at iteration %lld (epoch %lld of %d): %s\n", static_cast<long long>(state.iteration),
                static_cast<long long>(state.epoch + 1), config.epochs, what.c_str());
    std::printf("the state after iteration %lld is in '%s'; %s\n", static_cast<long long>(state.iteration),
                io::printable(files.diverged).c_str(),
                saved_iteration >= 0 || resumed ? "the last good checkpoint is kept" : "no checkpoint was written");
    return summary;
  }

  // Prints on rank 0 only: the other ranks' lines would repeat it.
  template <typename... Args>
  void say(const char* format, Args... args) const {
    if (root) std::printf(format, args...);
  }

  // The step's losses over the global batch (each rank's weighted by its
  // share), and whether any rank was asked to stop: one collective, so that
  // every rank decides alike whether the run diverged or stops. The ranks'
  // dropout streams are also brought to the same offset, which a resumed
  // run restores from rank 0's.
  models::StepLosses combine_ranks(const models::StepLosses& local, double share, bool& stop) {
    if (world->size() == 1) {
      stop = stop_requested;
      return local;
    }
    std::vector<double> sums = {share * local.g_total, share * local.g_adv,  share * local.g_l1,
                                share * local.d_total, share * local.d_real, share * local.d_fake,
                                local.g_gradients_finite ? 0.0 : 1.0, local.d_gradients_finite ? 0.0 : 1.0,
                                stop_requested ? 1.0 : 0.0, static_cast<double>(default_generator().offset())};
    // The offset is exact in a double up to 2^53 blocks; the ranks' differ by a batch's draws at most.
    std::vector<double> offset = {sums.back()};
    sums.pop_back();
    world->all_reduce(sums, distributed::ReduceOp::Sum, "the step's losses");
    world->all_reduce(offset, distributed::ReduceOp::Max, "the dropout streams' offsets");
    default_generator().set_state(default_generator().seed(), static_cast<uint64_t>(offset[0]));
    stop = sums[8] > 0;
    return models::StepLosses{sums[0], sums[1], sums[2], sums[3], sums[4], sums[5], sums[6] == 0, sums[7] == 0};
  }

  // On several ranks, when a collective times out on rank 0 between two
  // steps (another rank hangs reading its batch, say), rank 0 saves the
  // completed steps before every rank is stopped.
  void save_if_a_rank_times_out() {
    if (!mpi_world || !root) return;
    mpi_world->on_timeout([this] {
      const bool unsaved = state.iteration > std::max(saved_iteration, start_iteration);
      if (!in_step && unsaved && save())
        std::fprintf(stderr, "a checkpoint of the %lld completed iterations is in '%s'\n",
                     static_cast<long long>(state.iteration), io::printable(files.checkpoint).c_str());
      if (started)
        log->write({{"event", "error"}, {"iteration", state.iteration},
                    {"message", "a collective waited past --dist-timeout for another rank"}});
    });
  }

  // This rank's next batch. On several ranks, a rank that cannot read its
  // batch (a damaged image) tells the others, so that every rank stops
  // between two steps and rank 0 saves the completed ones, rather than the
  // others waiting for it inside the step until the timeout.
  std::optional<data::Batch> next_batch(data::DataLoader& loader) {
    if (world->size() == 1) return loader.next();
    std::optional<data::Batch> batch;
    std::exception_ptr failure;
    try {
      batch = loader.next();
    } catch (...) {
      failure = std::current_exception();
    }
    distributed::agree_all_succeeded(*world, failure, "read its next batch");
    return batch;
  }

  RunSummary run() {
    data::LoaderOptions loader_options;
    loader_options.batch_size = static_cast<size_t>(config.batch_size);
    loader_options.seed = config.seed;
    loader_options.num_workers = config.workers;
    loader_options.rank = world->rank();
    loader_options.world_size = world->size();
    data::DataLoader loader(train_set, loader_options);
    int64_t total = per_epoch * config.epochs;  // per_epoch and the position were checked in prepare()
    if (config.max_iterations > 0) total = std::min(total, config.max_iterations);
    total_iterations = total;

    RunSummary summary;
    summary.output = config.output;
    // With --max-iterations short of the epochs, both are named: the
    // schedule still spans the epochs.
    const std::string epochs = std::to_string(config.epochs) + (config.epochs == 1 ? " epoch" : " epochs");
    const std::string extent = total < per_epoch * config.epochs
                                   ? "--max-iterations; the schedule spans " + epochs + ", " +
                                         std::to_string(per_epoch * config.epochs) + " iterations"
                                   : epochs;
    say("pix2pix: preset %s, %s on %s (%s), %zu training pairs, batch %d, %lld iteration%s (%s)\n",
        config.preset.c_str(), io::printable(config.dataset).c_str(), device.str().c_str(),
        describe_convolutions(device, config.precision, config.conv_impl).c_str(), train_set->size(),
        config.batch_size * world->size(), static_cast<long long>(total), total == 1 ? "" : "s",
        extent.c_str());
    if (config.cuda_graph)
      say("%s\n", device.is_cuda() ? "cuda graph: step 1 eager, then each step one launch of the step captured at "
                                      "step 2"
                                    : "cuda graph on the CPU: a stand-in that runs each step again from the captured "
                                      "state (the same numbers at eager cost; for checking the graph path)");
    if (world->size() > 1)
      say("data parallel: %d ranks (%s) x batch %d, %s batch norm, %d CPU thread(s) on rank 0\n", world->size(),
          world->backend().c_str(), config.batch_size,
          config.norm != "batch" ? "no" : config.sync_bn ? "synchronised" : "per-rank", omp_get_max_threads());
    if (state.iteration > 0)
      say("resuming at iteration %lld (epoch %lld of %d, batch %lld)\n", static_cast<long long>(state.iteration),
          static_cast<long long>(state.epoch + 1), config.epochs, static_cast<long long>(state.batches_done));
    if (!kept_steering.empty())
      say("kept from the run: %s (give them again to change them)\n", kept_steering.c_str());
    if (state.iteration >= total) {
      say("nothing to do: the run is at iteration %lld of %lld%s\n", static_cast<long long>(state.iteration),
          static_cast<long long>(total),
          config.max_iterations > 0 ? " (its --max-iterations; give a larger one, or 0 for all epochs)" : "");
      summary.iterations = state.iteration;
      return summary;
    }

    if (learning_rate(state.epoch) == 0)
      say("note: the linear schedule gives epoch %lld of %d a learning rate of 0 (as the reference's, the "
          "last epoch of the decay runs at 0); nothing is learnt then: give more --epochs or --schedule "
          "constant\n", static_cast<long long>(state.epoch + 1), config.epochs);
    const StopHandlers stop_handlers;
    save_if_a_rank_times_out();
    // The hook refers to this trainer: removed when run() ends, however it ends.
    const std::unique_ptr<Impl, void (*)(Impl*)> remove_hook(this, [](Impl* impl) {
      if (impl->mpi_world) impl->mpi_world->on_timeout(nullptr);
    });
    // Under mpirun a rank's output is a terminal wherever mpirun's goes: lines, never redrawn.
    ProgressBar progress(total, state.iteration, config.log_interval, root ? stdout : nullptr,
                         !distributed::started_by_launcher());
    LossMeans means;
    in_step = false;
    bool stop = false;  // agreed by every rank after each step
    const int64_t first_iteration = state.iteration;
    // A step's losses, once known: combined over the ranks, checked, added
    // to the means and shown. Returns what was not finite, if anything.
    std::chrono::steady_clock::time_point last_seen_end{};
    const auto account = [&](const models::StepLosses& local,
                             const StepRecord& step) -> std::optional<std::string> {
      // The step's time: from its start, or from when the step before it
      // was seen to end if that was later (under --cuda-graph the host
      // queues a step before the one before it has ended), to now.
      const auto now = std::chrono::steady_clock::now();
      const double seconds = std::chrono::duration<double>(now - std::max(step.started, last_seen_end)).count();
      last_seen_end = now;
      const models::StepLosses latest = combine_ranks(local, step.share, stop);
      if (!latest.finite()) {
        std::string what = latest.describe_nonfinite();
        if (step.iteration != state.iteration)
          what += " at iteration " + std::to_string(step.iteration) + ", whose losses came one step late "
                  "(--cuda-graph): the state written is after iteration " + std::to_string(state.iteration);
        return what;
      }
      ensure_started();
      means.add(latest, seconds);
      char status[160];
      std::snprintf(status, sizeof status, "epoch %lld/%d  G %.3f (L1 %.4f)  D %.4f",
                    static_cast<long long>(step.epoch + 1), config.epochs, latest.g_total, latest.g_l1,
                    latest.d_total);
      if (world->size() > 1)  // this step's throughput over every rank's images
        std::snprintf(status + std::strlen(status), sizeof status - std::strlen(status), "  %.1f img/s",
                      static_cast<double>(step.global_samples) / std::max(seconds, 1e-9));
      progress.update(step.iteration, status);
      return std::nullopt;
    };
    // Under --cuda-graph a step's losses come one step late, so that the
    // host queues the next step while the device runs this one: `deferred`
    // is the step whose losses are still to come. settle() waits for them.
    std::optional<StepRecord> deferred;
    const auto settle = [&]() -> std::optional<std::string> {
      if (!deferred) return std::nullopt;
      const StepRecord step = *deferred;
      deferred.reset();
      in_step = true;
      const std::optional<models::StepLosses> losses = graphed->finish();
      in_step = false;
      PIXGRAD_CHECK(losses.has_value(), "graphed step: a step gave no losses");
      return account(*losses, step);
    };
    try {
      for (; state.epoch < config.epochs; ++state.epoch, state.batches_done = 0) {
        model->set_learning_rate(learning_rate(state.epoch));
        loader.start_epoch(static_cast<uint64_t>(state.epoch), static_cast<size_t>(state.batches_done));
        while (state.iteration < total) {
          if (world->size() == 1 ? stop_requested.load() : stop) {
            if (const std::optional<std::string> bad = settle()) {
              progress.finish();
              return diverge(*bad, summary);
            }
            progress.finish();
            say("interrupted: saving a checkpoint at iteration %lld\n", static_cast<long long>(state.iteration));
            if (state.iteration > first_iteration) {
              if (means.count > 0) log_training(means);
              if (!snapshot("stopped: " + progress_status()))
                return diverge("the parameters are no longer finite", summary);
              if (root) log->write({{"event", "stopped"}, {"iteration", state.iteration}});
            }
            summary.iterations = state.iteration;
            summary.trained = state.iteration - first_iteration;
            summary.interrupted = true;
            return summary;
          }
          const auto started_at = std::chrono::steady_clock::now();
          std::optional<data::Batch> batch = next_batch(loader);
          if (!batch) break;
          const int64_t images = batch->input.size(0);
          const StepRecord step{state.iteration + 1, state.epoch, batch->global_samples,
                                static_cast<double>(images) / static_cast<double>(batch->global_samples),
                                started_at};
          // Whether the step's losses or the model are read before the next
          // step: its losses are then waited for at once.
          const bool due = step.iteration % config.log_interval == 0 ||
                           (config.eval_interval > 0 && step.iteration % config.eval_interval == 0) ||
                           step.iteration % config.snapshot_interval == 0 || step.iteration >= total ||
                           state.batches_done + 1 == per_epoch || stop_requested;
          model->set_loss_scale(step.share * world->size());
          in_step = true;
          if (config.cuda_graph && !graphed) graphed = std::make_unique<models::GraphedTrainStep>(*model);
          std::optional<models::StepLosses> local, earlier;
          if (graphed)
            earlier = graphed->step(batch->input, batch->target);  // the losses of the step before, if deferred
          else
            local = model->train_step(batch->input.to(device), batch->target.to(device));
          in_step = false;
          ++state.iteration;
          ++state.batches_done;

          std::optional<std::string> bad;
          if (earlier) {
            PIXGRAD_CHECK(deferred.has_value(), "graphed step: losses of a step that was not deferred");
            const StepRecord before = *deferred;
            deferred.reset();
            bad = account(*earlier, before);
          }
          if (!bad) {
            if (local) {
              bad = account(*local, step);
            } else {
              deferred = step;
              if (due) bad = settle();
            }
          }
          if (bad) {
            progress.finish();
            return diverge(*bad, summary);
          }
          if (state.iteration % config.log_interval == 0) log_training(means);
          if (config.eval_interval > 0 && state.iteration % config.eval_interval == 0) evaluate();
          if (state.iteration % config.snapshot_interval == 0 && !snapshot()) {
            progress.finish();
            return diverge("the parameters are no longer finite", summary);
          }
        }
        if (state.batches_done == per_epoch) save_history(state.epoch + 1);
        if (state.iteration >= total) break;
      }
      if (const std::optional<std::string> bad = settle()) {
        progress.finish();
        return diverge(*bad, summary);
      }
      if (means.count > 0) log_training(means);
      progress.finish();
      // A run cut short by --max-iterations has not finished its epochs.
      const bool cut_short = total < static_cast<int64_t>(config.epochs) * per_epoch;
      if (!snapshot((cut_short ? "stopped at --max-iterations: " : "finished: ") + progress_status()))
        return diverge("the parameters are no longer finite", summary);
    } catch (const std::exception& error) {
      progress.finish();
      // Between two steps, a step whose losses are still to come is checked
      // before anything is saved. A diverged one ends the run as it would
      // have without --cuda-graph, where its losses were seen before the
      // error came: written aside, the last good checkpoint kept. (If
      // waiting for it fails, settle() leaves in_step set: the model's state
      // is then unknown.)
      if (!in_step) {
        std::optional<std::string> bad;
        try {
          bad = settle();
        } catch (const std::exception&) {
        }
        if (bad) return diverge(*bad, summary);
      }
      save_after_error(error, in_step, first_iteration);
      throw;
    }
    summary.iterations = state.iteration;
    summary.trained = state.iteration - first_iteration;
    return summary;
  }

  // An error in the loop: the steps completed since the last checkpoint are
  // saved if the model is between two steps; an error inside a step leaves
  // the model half updated, so the last checkpoint is what is kept.
  void save_after_error(const std::exception& error, bool inside_step, int64_t first_iteration) {
    if (!root) return;
    const bool unsaved = state.iteration > std::max(saved_iteration, first_iteration);
    // The checkpoint first: a log that cannot be written must not cost the steps.
    try {
      if (unsaved && !inside_step && save()) {
        std::fprintf(stderr, "error at iteration %lld: a checkpoint of the completed iterations is in '%s'\n",
                     static_cast<long long>(state.iteration), io::printable(files.checkpoint).c_str());
      } else if (unsaved) {
        std::fprintf(stderr, "error inside iteration %lld: the model is half updated, so the last checkpoint is "
                     "kept\n", static_cast<long long>(state.iteration + 1));
      }
    } catch (const std::exception& also) {
      std::fprintf(stderr, "while saving after the error: %s\n", io::printable(also.what()).c_str());
    }
    try {
      if (started)
        log->write({{"event", "error"}, {"iteration", state.iteration}, {"message", io::printable(error.what())}});
    } catch (const std::exception&) {
      // The error itself is what the user sees.
    }
  }
};

Trainer::Trainer(TrainConfig config, const std::string& resume, const std::set<std::string>& explicit_fields,
                 bool overwrite, std::shared_ptr<distributed::Communicator> world)
    : impl_(std::make_unique<Impl>(config, resume, explicit_fields, overwrite, std::move(world))) {}
Trainer::~Trainer() = default;
RunSummary Trainer::run() { return impl_->run(); }
models::Pix2Pix& Trainer::model() { return *impl_->model; }

}  // namespace pixgrad::training
