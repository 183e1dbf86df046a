// train_pix2pix: trains pix2pix on paired images (the pix2pix "aligned" A|B
// layout, or the CMP facade base set) and writes log.jsonl, a progress bar,
// preview grids, a loss plot and resumable checkpoints into --output.
#include <CLI/CLI.hpp>

#include "command_line.h"

#include <omp.h>
#include <unistd.h>  // sysconf

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <pixgrad/core/error.h>
#include <pixgrad/core/file_io.h>
#include <pixgrad/distributed/agreement.h>
#include <pixgrad/distributed/mpi_communicator.h>
#include <pixgrad/training/trainer.h>

namespace {

using pixgrad::training::TrainConfig;

// Registers every option; `explicit_fields` later learns which were given.
void add_options(CLI::App& app, TrainConfig& c, std::string& resume) {
  app.add_option("--dataset", c.dataset, "Dataset root (aligned: with train/ and test/ folders of A|B images; "
                                         "cmp: the CMP base folder), e.g. ../shared/data/facades; "
                                         "required unless --resume");
  app.add_option("--format", c.format, "Dataset layout: aligned | cmp")->capture_default_str();
  app.add_option("--direction", c.direction, "aligned only: AtoB (left half -> right half) | BtoA")
      ->capture_default_str();
  app.add_option("--train-split", c.train_split, "Split to train on")->capture_default_str();
  app.add_option("--test-split", c.test_split, "Split for previews and --eval-interval")->capture_default_str();
  app.add_option("--preprocess", c.preprocess,
                 "aligned only: resize_and_crop (load-size square, random crop-size crop) | crop (random crop-size "
                 "crop at the image's own size) | scale_width (width to load-size, height keeps the aspect ratio) | "
                 "scale_width_and_crop (then a random crop-size crop) | none (the image's own size); sides are then "
                 "cropped to the U-Net's multiple, 2^num-downs")
      ->capture_default_str();
  app.add_option("--load-size", c.load_size, "Resize to this size before cropping")->capture_default_str();
  app.add_option("--crop-size", c.crop_size, "Random crop size (the training resolution)")->capture_default_str();
  app.add_flag("--no-flip", c.no_flip, "Disable random horizontal flips");
  app.add_option("--input-nc", c.input_nc, "aligned only: channels of the input images, 1 grey | 2 grey+alpha | "
                                           "3 RGB | 4 RGBA (0: the format's, aligned 3, cmp 12 label classes)")
      ->capture_default_str();
  app.add_option("--output-nc", c.output_nc, "aligned only: channels of the target images (1..4)")
      ->capture_default_str();
  app.add_option("--workers", c.workers, "Background threads decoding and augmenting images")->capture_default_str();

  app.add_option("--preset", c.preset, "paper (PyTorch reference: unet_256 + 70x70 PatchGAN) | chainer (the "
                                       "original Chainer trainer)")
      ->capture_default_str();
  app.add_option("--ngf", c.ngf, "Generator base width")->capture_default_str();
  app.add_option("--ndf", c.ndf, "Discriminator base width")->capture_default_str();
  app.add_option("--num-downs", c.num_downs, "U-Net downsamplings (0: the preset's, 8 paper / 7 chainer)")
      ->capture_default_str();
  app.add_option("--n-layers", c.n_layers, "paper discriminator: stride-2 layers (3 = 70x70 PatchGAN)")
      ->capture_default_str();
  app.add_option("--discriminator", c.discriminator, "paper discriminator: patch (n-layers PatchGAN) | pixel "
                                                     "(1x1 PixelGAN)")
      ->capture_default_str();
  app.add_option("--norm", c.norm, "batch | instance | none")->capture_default_str();
  app.add_flag("--no-dropout", c.no_dropout, "No dropout in the generator");
  app.add_option("--gan-mode", c.gan_mode, "Adversarial objective: vanilla (cross-entropy with logits) | lsgan "
                                           "(least squares) | wgangp (Wasserstein; as in the PyTorch reference's "
                                           "pix2pix, without the gradient penalty) | hinge")
      ->capture_default_str();

  app.add_option("--batch-size", c.batch_size, "Images per iteration")->capture_default_str();
  app.add_option("--epochs", c.epochs, "Epochs in total (with --resume: a larger number continues a finished run)")
      ->capture_default_str();
  app.add_option("--schedule", c.schedule, "Learning rate: linear (constant, then linear decay to 0) | constant "
                                           "(default: the preset's, paper linear, chainer constant)");
  app.add_option("--decay-epochs", c.decay_epochs, "linear: epochs of decay at the end (-1: half of --epochs)")
      ->capture_default_str();
  app.add_option("--lr", c.lr, "Adam learning rate")->capture_default_str();
  app.add_option("--beta1", c.beta1, "Adam beta1")->capture_default_str();
  app.add_option("--lambda-l1", c.lambda_l1, "Weight of the L1 term")->capture_default_str();
  app.add_option("--seed", c.seed, "Seed of initialisation, data order, augmentation and dropout")
      ->transform(pixgrad::apps::unsigned_64_bits())
      ->capture_default_str();
  app.add_option("--max-iterations", c.max_iterations, "Stop after this many iterations in all (0: all epochs)")
      ->capture_default_str();

  app.add_option("--device", c.device, "auto | cpu | cuda | cuda:N")->capture_default_str();
  app.add_option("--conv-impl", c.conv_impl, "CUDA convolutions: handwritten (default) | cudnn | cublas; the "
                                               "one in effect is recorded, and --resume keeps it unless given");
  pixgrad::apps::add_precision_options(app, c.precision, c.tf32,
                                       ". The precision in effect (PIXGRAD_PRECISION's when not given) is recorded "
                                       "in options.json; --resume keeps it unless --precision or --tf32 is given",
                                       " (with --resume, --tf32=false turns a recorded tf32 into fp32)");
  app.add_option("--output", c.output, "Output folder (with --resume: the checkpoint's folder unless given)")
      ->capture_default_str();
  app.add_option("--resume", resume, "Continue from a checkpoint (e.g. out/checkpoint.safetensors)");
  app.add_option("--init-from", c.init_from, "Start a new run from a checkpoint's weights (fine-tuning): its "
                                             "generator, and discriminator if it holds one; fresh optimisers, "
                                             "this command line's options");
  app.add_option("--log-interval,--display-interval", c.log_interval,
                 "Iterations per log.jsonl record (and console line when not on a terminal, or on several ranks)")
      ->capture_default_str();
  app.add_option("--snapshot-interval", c.snapshot_interval,
                 "Iterations per checkpoint, preview grid and loss plot")
      ->capture_default_str();
  app.add_option("--eval-interval", c.eval_interval,
                 "Iterations per evaluation (mean L1, PSNR, SSIM on --test-split; 0: never)")
      ->capture_default_str();
  app.add_option("--preview-count", c.preview_count, "Test images in the preview grid")->capture_default_str();
  app.add_option("--save-epoch-freq", c.save_epoch_freq,
                 "Epochs per history checkpoint of the generator in checkpoints/ (0: none)")
      ->capture_default_str();
  app.add_option("--keep-checkpoints", c.keep_checkpoints, "History checkpoints kept, the newest (0: all)")
      ->capture_default_str();
  app.add_flag("--cuda-graph", c.cuda_graph,
               "Replay every training step after the first as one CUDA graph: one launch per step, the same "
               "numbers as without it; not with data parallelism. On the CPU a stand-in runs each step again from "
               "the captured state, at eager cost, for checking only. --resume keeps it; --cuda-graph=false turns "
               "it off");
  app.add_flag("--sync-bn", c.sync_bn, "Data parallel (under mpirun or srun): batch-norm statistics over every "
                                       "rank's images, as one process with the whole batch would (default: each "
                                       "rank its own, as the reference)");
  app.add_option("--dist-timeout", c.dist_timeout, "Data parallel: seconds a rank waits for the others before "
                                                   "the run stops, naming the ranks that did not arrive (must "
                                                   "exceed rank 0's snapshot and evaluation time)")
      ->capture_default_str();
}

// Ranks on one machine share its cores: unless OMP_NUM_THREADS says
// otherwise, each rank's threads take its share (every rank starting a
// thread per core would oversubscribe them many times over).
void share_cores_among_local_ranks(const pixgrad::distributed::Communicator& world) {
  const auto* mpi = dynamic_cast<const pixgrad::distributed::MpiCommunicator*>(&world);
  if (mpi == nullptr || mpi->local_size() <= 1 || std::getenv("OMP_NUM_THREADS") != nullptr) return;
  // The machine as the ranks share it: its CPUs, or the job's cpuset where
  // there is one (Slurm, containers).
  const long online = sysconf(_SC_NPROCESSORS_ONLN);
  int machine = online > 0 ? static_cast<int>(online) : omp_get_num_procs();
  if (const int cpuset = pixgrad::distributed::cpuset_cpu_count(); cpuset > 0) machine = std::min(machine, cpuset);
  omp_set_num_threads(
      pixgrad::distributed::threads_per_local_rank(omp_get_num_procs(), machine, mpi->local_size()));
}

// The other ranks' lines would repeat rank 0's.
void silence_stdout() {
  if (std::freopen("/dev/null", "w", stdout) == nullptr) std::fclose(stdout);
}

// Parses the command line; returns the exit status when the program should
// stop now. On several ranks they first agree which of them stop (after
// --help, or a mistake), so that all stop together: rank 0 prints its
// mistake, or the help if any rank asked for it; another rank prints its
// mistake unless rank 0 printed the same; rank 0 names the ranks whose
// command line stopped the run when its own did not.
std::optional<int> parse_on_every_rank(CLI::App& app, int argc, char** argv,
                                       pixgrad::distributed::Communicator& world) {
  const pixgrad::apps::ParseOutcome outcome = pixgrad::apps::try_parse_command_line(app, argc, argv);
  if (world.size() == 1) {
    if (!outcome.status) return std::nullopt;
    return pixgrad::apps::report_parse_outcome(app, outcome, "train_pix2pix");
  }
  // [r]: rank r stops; [n]: the largest status; [n + 1]: a rank asked for
  // --help; [n + 2]: rank 0's mistake, as a digest (exact in a double).
  const size_t n = static_cast<size_t>(world.size());
  const auto digest = [](const std::string& text) {
    return static_cast<double>(pixgrad::distributed::digest_of(text) >> 12) + 1;
  };
  const bool asked_help = outcome.status && outcome.mistake.empty();
  std::vector<double> votes(n + 3, 0.0);
  if (outcome.status) {
    votes[static_cast<size_t>(world.rank())] = 1;
    votes[n] = *outcome.status;
    votes[n + 1] = asked_help ? 1 : 0;
    if (world.is_root() && !asked_help) votes[n + 2] = digest(outcome.mistake);
  }
  world.all_reduce(votes, pixgrad::distributed::ReduceOp::Max, "reading the command lines");
  std::vector<int> stopped;
  for (size_t r = 0; r < n; ++r)
    if (votes[r] > 0) stopped.push_back(static_cast<int>(r));
  if (stopped.empty()) return std::nullopt;

  if (world.is_root()) {
    if (outcome.status && !asked_help)
      pixgrad::apps::report_parse_outcome(app, outcome, "train_pix2pix");
    else if (votes[n + 1] > 0)
      pixgrad::apps::report_parse_outcome(app, pixgrad::apps::ParseOutcome{0, ""}, "train_pix2pix");  // the help
    if (!outcome.status) {
      std::string ranks;
      for (const int r : stopped) ranks += (ranks.empty() ? "" : ", ") + std::to_string(r);
      std::fprintf(stderr, "train_pix2pix: rank 0: the command line of rank(s) %s stopped the run (--help, or a "
                   "mistake that rank printed); nothing was trained: start every rank with the same command line\n",
                   ranks.c_str());
    }
  } else if (outcome.status && !asked_help && digest(outcome.mistake) != votes[n + 2]) {
    std::fprintf(stderr, "train_pix2pix: rank %d: %s (see train_pix2pix --help)\n", world.rank(),
                 outcome.mistake.c_str());
  }
  // Ranks whose command lines differ did not all stop: not a success.
  const int status = static_cast<int>(votes[n]);
  return stopped.size() == n ? status : std::max(status, 1);
}

std::set<std::string> explicit_fields(const CLI::App& app) {
  std::set<std::string> fields;
  for (const CLI::Option* option : app.get_options()) {
    if (option->count() == 0 || option->get_lnames().empty()) continue;
    std::string field = option->get_lnames().front();
    for (char& ch : field)
      if (ch == '-') ch = '_';
    fields.insert(field);
  }
  return fields;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"train_pix2pix: train the pix2pix image-to-image GAN on paired images"};
  app.footer(
      "Examples:\n"
      "  train_pix2pix --dataset ../shared/data/facades --direction BtoA --output out/facades\n"
      "  train_pix2pix --dataset ../shared/data/cmp_facade_base --format cmp --preset chainer\n"
      "  train_pix2pix --resume out/facades/checkpoint.safetensors --epochs 300\n"
      "  train_pix2pix --dataset my_pairs --init-from out/facades/checkpoints/epoch_0200.safetensors --output out/mine\n"
      "The output folder gets checkpoint.safetensors, log.jsonl, options.json, preview.png, loss.png, index.html\n"
      "(open it in a browser), previews/ and checkpoints/.\n"
      "Data parallel: mpirun -np 2 train_pix2pix ... (or srun) runs one rank per process, --batch-size images\n"
      "each; rank 0 writes the output folder. See docs/distributed.md.\n"
      "Ctrl-C, SIGTERM, SIGUSR1 or SIGUSR2 save a checkpoint before stopping (under mpirun, send SIGUSR1 to\n"
      "mpirun: it passes that one on to every rank). A non-finite loss or gradient stops the run with the last good\n"
      "checkpoint kept and the diverged state in checkpoint.diverged.safetensors.\n"
      "Exit status: 0 done, 1 error (an option's value out of range included), 3 diverged, 4 a data-parallel rank\n"
      "waited past --dist-timeout, 130 interrupted; 100 and above: the command line was refused as it was read (an\n"
      "unknown option, a value not of the option's type, such as a --seed that is not a whole number).");
  // Under mpirun or srun every rank joins the others first, before it reads
  // its command line: a rank that stopped earlier (after --help, or a
  // mistake) would leave the others waiting in MPI's start-up for ever.
  std::shared_ptr<pixgrad::distributed::Communicator> world;
  try {
    world = pixgrad::distributed::join_world();
  } catch (const std::exception& error) {
    std::fprintf(stderr, "train_pix2pix: %s\n", pixgrad::io::printable(error.what()).c_str());
    return 1;
  }
  const bool several = world->size() > 1;
  if (!world->is_root()) silence_stdout();
  share_cores_among_local_ranks(*world);
  // "train_pix2pix: rank 1: ..." when several ranks could print it.
  const std::string prefix = "train_pix2pix: " + (several ? "rank " + std::to_string(world->rank()) + ": " : "");

  TrainConfig config;
  std::string resume;
  bool overwrite = false;
  pixgrad::apps::last_value_wins(app);
  add_options(app, config, resume);
  app.add_flag("--overwrite", overwrite,
               "Start a new run in an --output folder that holds another run's checkpoint and log (the log is "
               "kept and appended to)");
  if (const std::optional<int> status = parse_on_every_rank(app, argc, argv, *world)) return *status;

  try {
    std::set<std::string> given = explicit_fields(app);
    PIXGRAD_CHECK(!given.count("resume") || !resume.empty(), "--resume needs a checkpoint's path");
    given.erase("resume");
    given.erase("overwrite");
    pixgrad::training::Trainer trainer(config, resume, given, overwrite, world);
    const pixgrad::training::RunSummary summary = trainer.run();
    // No rank ends (and finalises MPI) while rank 0 still writes.
    world->barrier("the end of the run");
    if (summary.diverged) return 3;
    if (summary.trained == 0) {  // "nothing to do" was said, or stopped before a step: nothing written
      if (summary.interrupted) std::printf("stopped before any step; nothing was written\n");
      return summary.interrupted ? 130 : 0;
    }
    const std::string checkpoint = pixgrad::training::OutputFiles(summary.output).checkpoint;
    std::printf("%s after %lld iterations; checkpoint '%s', with index.html, log.jsonl and previews beside it\n",
                summary.interrupted ? "stopped" : "done", static_cast<long long>(summary.iterations),
                pixgrad::io::printable(checkpoint).c_str());
    return summary.interrupted ? 130 : 0;
  } catch (const pixgrad::distributed::AgreedError& error) {
    // Every rank raised it together: the ones it concerns say it, and all end alike.
    if (error.should_print())
      std::fprintf(stderr, "%s%s\n", prefix.c_str(), pixgrad::io::printable(error.what()).c_str());
    return 1;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "%s%s\n", prefix.c_str(), pixgrad::io::printable(error.what()).c_str());
    // The other ranks would wait for this one in their next collective.
    if (several) world->abort(1);
    return 1;
  }
}
