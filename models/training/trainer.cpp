#include "models/training/trainer.h"

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/autograd.h"
#include "core/error.h"
#include "core/generator.h"
#include "layers/schedule.h"
#include "models/datasets/loader.h"
#include "models/datasets/preview.h"
#include "models/training/metrics.h"
#include "models/training/model_factory.h"
#include "models/training/progress.h"
#include "models/training/run_log.h"

namespace pixgrad::training {

namespace {

std::atomic<bool> stop_requested{false};

extern "C" void request_stop(int) { stop_requested = true; }

// Creates the folder and proves it writable before any work is done.
void prepare_output_folder(const std::string& folder) {
  std::error_code error;
  std::filesystem::create_directories(folder, error);
  PIXGRAD_CHECK(!error, "output folder '", folder, "': cannot create it: ", error.message());
  const std::string probe = (std::filesystem::path(folder) / ".write_test").string();
  std::ofstream out(probe);
  PIXGRAD_CHECK(out.good(), "output folder '", folder, "': not writable");
  out.close();
  std::filesystem::remove(probe, error);
}

// Running means of the step losses between two log records.
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

}  // namespace

void install_stop_handlers() {
  std::signal(SIGINT, request_stop);
  std::signal(SIGTERM, request_stop);
}

OutputFiles::OutputFiles(const std::string& folder) {
  const std::filesystem::path root(folder);
  checkpoint = (root / "checkpoint.safetensors").string();
  log = (root / "log.jsonl").string();
  preview = (root / "preview.png").string();
  loss_plot = (root / "loss.png").string();
}

struct Trainer::Impl {
  TrainConfig config;
  OutputFiles files;
  Device device;
  std::shared_ptr<data::Dataset> train_set, test_set;
  std::unique_ptr<models::Pix2Pix> model;
  TrainState state;
  std::unique_ptr<RunLog> log;
  std::unique_ptr<optim::Schedule> schedule;

  Impl(const TrainConfig& requested, const std::string& resume, const std::set<std::string>& explicit_fields)
      : config(requested), files(requested.output) {
    std::optional<Checkpoint> checkpoint;
    if (!resume.empty()) {
      checkpoint = load_checkpoint(resume);
      config = merge_for_resume(checkpoint->config, requested, explicit_fields, resume);
      files = OutputFiles(config.output);
    }
    validate(config);
    prepare_output_folder(config.output);
    device = resolve_device(config.device);
    select_conv_impl(config.conv_impl);
    select_tf32(config.tf32);
    train_set = make_dataset(config, config.train_split, true);
    test_set = make_dataset(config, config.test_split, false);

    manual_seed(config.seed);  // parameter initialisation
    model = std::make_unique<models::Pix2Pix>(pix2pix_options(config));
    const int64_t multiple = model->generator().size_multiple();
    PIXGRAD_CHECK(config.crop_size % multiple == 0, "--crop-size ", config.crop_size, " must be a multiple of ",
                  multiple, " for a U-Net with ", model->options().generator.num_downs, " downsamplings");
    model->to(device);
    // Dropout draws from the default generator, on a stream of its own.
    default_generator().set_state(config.seed ^ 0x5DEECE66Dull, 0);
    if (checkpoint) {
      model->load_state_dict(checkpoint->tensors);
      state = checkpoint->state;
      default_generator().set_state(state.rng_seed, state.rng_offset);
    }
    log = std::make_unique<RunLog>(files.log, state.iteration);
    if (config.effective_schedule() == "constant") {
      schedule = std::make_unique<optim::ConstantSchedule>();
    } else {
      const int decay = config.decay_epochs >= 0 ? config.decay_epochs : config.epochs / 2;
      schedule = std::make_unique<optim::LinearDecaySchedule>(config.epochs - decay, decay);
    }
  }

  double learning_rate(int64_t epoch) const { return config.lr * schedule->factor(static_cast<int>(epoch)); }

  void save() {
    state.rng_seed = default_generator().seed();
    state.rng_offset = default_generator().offset();
    save_checkpoint(files.checkpoint, model->state_dict(), config, state);
  }

  // Runs `body` with G in its test-time mode, then restores G's buffers and
  // the dropout stream, so previews and evaluation never change the run.
  template <typename Body>
  void without_side_effects(Body body) {
    std::vector<std::pair<Tensor, Tensor>> saved;
    for (const auto& [name, buffer] : model->generator().named_buffers()) saved.emplace_back(buffer, buffer.clone());
    const Generator rng = default_generator();
    body();
    for (auto& [buffer, copy] : saved) buffer.copy_(copy);
    default_generator() = rng;
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
        rows.push_back({data::tensor_to_image(example.input), data::tensor_to_image(generated),
                        data::tensor_to_image(example.target)});
      }
    });
    data::save_png(files.preview, data::make_grid(rows, 4));
  }

  void write_loss_plot() {
    std::vector<double> l1, adv, d;
    for (const nlohmann::json& record : log->training_records()) {
      l1.push_back(record.value("loss_L1", 0.0));
      adv.push_back(record.value("loss_G_adv", 0.0));
      d.push_back(record.value("loss_D", 0.0));
    }
    if (l1.size() < 2) return;
    data::save_png(files.loss_plot, data::plot_losses({{"G L1", l1}, {"G adv", adv}, {"D", d}}, 640, 360));
  }

  void evaluate() {
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

  RunSummary run() {
    data::LoaderOptions loader_options;
    loader_options.batch_size = static_cast<size_t>(config.batch_size);
    loader_options.seed = config.seed;
    loader_options.num_workers = config.workers;
    data::DataLoader loader(train_set, loader_options);
    const int64_t per_epoch = static_cast<int64_t>(loader.batches_per_epoch());
    PIXGRAD_CHECK(per_epoch > 0, "dataset '", config.dataset, "': split '", config.train_split, "' has no images");
    int64_t total = per_epoch * config.epochs;
    if (config.max_iterations > 0) total = std::min(total, config.max_iterations);

    std::printf("pix2pix: preset %s, %s on %s, %zu training pairs, batch %d, %lld iterations (%d epochs)\n",
                config.preset.c_str(), config.dataset.c_str(), device.str().c_str(), train_set->size(),
                config.batch_size, static_cast<long long>(total), config.epochs);
    if (state.iteration > 0)
      std::printf("resuming at iteration %lld (epoch %lld, batch %lld)\n", static_cast<long long>(state.iteration),
                  static_cast<long long>(state.epoch), static_cast<long long>(state.batches_done));

    ProgressBar progress(total, state.iteration, config.log_interval);
    LossMeans means;
    models::StepLosses latest;
    RunSummary summary;
    auto finish = [&](bool interrupted) {
      progress.finish();
      save();
      write_preview();
      write_loss_plot();
      summary.iterations = state.iteration;
      summary.interrupted = interrupted;
      summary.output = config.output;
      return summary;
    };

    for (; state.epoch < config.epochs; ++state.epoch, state.batches_done = 0) {
      model->set_learning_rate(learning_rate(state.epoch));
      loader.start_epoch(static_cast<uint64_t>(state.epoch), static_cast<size_t>(state.batches_done));
      while (state.iteration < total) {
        if (stop_requested) {
          progress.finish();
          std::printf("interrupted: saving a checkpoint at iteration %lld\n", static_cast<long long>(state.iteration));
          return finish(true);
        }
        const auto started = std::chrono::steady_clock::now();
        std::optional<data::Batch> batch = loader.next();
        if (!batch) break;
        latest = model->train_step(batch->input.to(device), batch->target.to(device));
        ++state.iteration;
        ++state.batches_done;
        means.add(latest, std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());

        char status[128];
        std::snprintf(status, sizeof status, "epoch %lld  G %.3f (L1 %.4f)  D %.4f",
                      static_cast<long long>(state.epoch), latest.g_total, latest.g_l1, latest.d_total);
        progress.update(state.iteration, status);
        if (state.iteration % config.log_interval == 0) log_training(means);
        if (config.eval_interval > 0 && state.iteration % config.eval_interval == 0) evaluate();
        if (state.iteration % config.snapshot_interval == 0) {
          save();
          write_preview();
          write_loss_plot();
        }
      }
      if (state.iteration >= total) break;
    }
    if (means.count > 0) log_training(means);
    return finish(false);
  }
};

Trainer::Trainer(TrainConfig config, const std::string& resume, const std::set<std::string>& explicit_fields)
    : impl_(std::make_unique<Impl>(config, resume, explicit_fields)) {}
Trainer::~Trainer() = default;
RunSummary Trainer::run() { return impl_->run(); }

}  // namespace pixgrad::training
