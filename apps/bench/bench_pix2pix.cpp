// bench_pix2pix: end-to-end training-step speed of pix2pix — seconds per
// iteration and images/s per preset and batch size (default 1, 4 and 16),
// the median over timed steps after warm-up, with the time split into
// phases (data, G forward, D forward/backward, G backward, optimiser), the
// convolution FLOP rate the step reaches (on the CPU also as a percentage of
// the CPU's measured FMA ceiling), the peak device memory, the peak host
// memory, and each configuration's distance to its goal.
//
// Inputs: random tensors of the training shape (the preset's reference
// input: 3-channel images for paper, 12-channel one-hot label maps for
// chainer), so the figures are the model's alone; or, with --dataset, real
// batches from data::DataLoader (decoded on its worker threads, as in
// train_pix2pix), whose wait for the next batch and upload to the device
// form the data phase.
//
// On the GPU the step time is measured with no synchronisation inside the
// step; the phases come from a second set of steps that synchronise between
// phases (PhaseTimes), which the total would otherwise include. On the CPU
// one set of steps gives both.
//
// Peak device memory is the caching allocator's high-water mark of bytes
// handed to tensors (cuda_memory_stats().peak_bytes_in_use). It cannot be
// reset, so configurations run from small to large batch; where an earlier
// configuration had set a higher mark, the row reports it as an upper bound.
//
// Efficiency on the CPU: the convolution FLOPs of one step (the same count as
// the "conv TF/s" column) over the step's time, as a percentage of the FMA
// ceiling (cpu_ceilings.h), which is measured once at the start. The step also
// runs batch norm, activations, losses and Adam, which do few FLOPs, so this
// is the whole step's distance from the machine's arithmetic rate.
//
// Peak host memory is the kernel's high-water mark of the process's resident
// set (VmHWM in /proc/self/status). It is reset (/proc/self/clear_refs) before
// each configuration, so each row gives the process's peak while that
// configuration ran (what was resident before it included); where the reset
// is refused, the row gives the peak so far in the process, and says so.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "../command_line.h"
#include "cpu_ceilings.h"
#include "json_output.h"
#include "pix2pix_layers.h"
#include <pixgrad/core/cuda_info.h>
#include <pixgrad/core/error.h>
#include <pixgrad/core/file_io.h>
#include <pixgrad/core/generator.h>
#include <pixgrad/data/loader.h>
#include <pixgrad/kernels/conv_settings.h>
#include <pixgrad/kernels/cpu/conv2d.h>
#include <pixgrad/models/graphed_step.h>
#include <pixgrad/models/pix2pix.h>
#include <pixgrad/training/model_factory.h>

#ifdef PIXGRAD_WITH_CUDA
#include "bench_ceilings.h"
#include <pixgrad/kernels/cuda/conv2d.h>
#endif

namespace {

using namespace pixgrad;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

// The process's peak resident set size (VmHWM) in MiB; nullopt where
// /proc/self/status is not readable.
std::optional<double> peak_rss_mib() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmHWM:", 0) != 0) continue;
    std::istringstream fields(line.substr(6));
    double kib = 0;
    if (fields >> kib) return kib / 1024;
  }
  return std::nullopt;
}

// Resets the peak resident set size to the current one (Linux >= 4.0);
// false where the kernel refuses.
bool reset_peak_rss() {
  std::ofstream clear_refs("/proc/self/clear_refs");
  clear_refs << "5" << std::flush;
  return static_cast<bool>(clear_refs);
}

nlohmann::json optional_json(const std::optional<double>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

std::vector<int> parse_list(const std::string& text) {
  std::vector<int> values;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) values.push_back(std::stoi(item));
  return values;
}

// The goals this project sets itself (docs/perf.md; docs/pix2pix.md for chainer).
struct Goal {
  std::string description;
  double seconds;
};

std::optional<Goal> goal_for(const std::string& preset, int batch, const Device& device,
                             const std::string& device_name) {
  if (batch != 1) return std::nullopt;
  if (device.is_cpu()) {
    if (preset == "paper") return Goal{"paper batch 1 on the 2-core development CPU <= 2 s/iter", 2.0};
    if (preset == "chainer") return Goal{"chainer batch 1 on the 2-core development CPU <= 5 s/iter", 5.0};
    return std::nullopt;
  }
  if (preset != "paper") return std::nullopt;
  const bool h100 = device_name.find("H100") != std::string::npos;
  return Goal{std::string("paper batch 1 on an H100 <= 3 ms/iter") +
                  (h100 ? "" : " (this GPU is " + device_name + ", not an H100: for reference)"),
              0.003};
}

std::string describe_device(const Device& device) {
#ifdef PIXGRAD_WITH_CUDA
  if (device.is_cuda()) {
    cuda_activate(device.index());
    return bench::describe_current_device().name;
  }
#endif
  return device.is_cpu() ? "cpu" : device.str();
}

// The convolutions' arithmetic on `device`: --precision, or the environment,
// on a GPU; on the CPU bf16 where it has AVX-512 BF16, else fp32.
std::string precision_in_effect(const Device& device) {
#ifdef PIXGRAD_WITH_CUDA
  if (device.is_cuda()) return kernels::cuda::to_string(kernels::cuda::conv_precision());
#endif
  (void)device;
  return kernels::to_string(kernels::cpu::conv_precision_in_effect());
}

std::string conv_impl_name(const Device& device) {
#ifdef PIXGRAD_WITH_CUDA
  if (device.is_cuda()) return kernels::cuda::to_string(kernels::cuda::conv_impl());
#endif
  (void)device;
  return "cpu";
}

// Where a step's batch comes from: fixed random tensors, or the loader.
class BatchSource {
 public:
  BatchSource(const training::TrainConfig& config, int batch, int size, Device device) : device_(device) {
    if (config.dataset.empty()) {
      Generator generator(2);
      input_ = Tensor::uniform({batch, config.input_channels(), size, size}, -1, 1, generator, device);
      target_ = Tensor::uniform({batch, config.output_channels(), size, size}, -1, 1, generator, device);
      return;
    }
    data::LoaderOptions options;
    options.batch_size = static_cast<size_t>(batch);
    options.num_workers = config.workers;
    options.drop_last = true;  // every step sees a full batch
    loader_ = std::make_unique<data::DataLoader>(training::make_dataset(config, "train", true), options);
    PIXGRAD_CHECK(loader_->batches_per_epoch() > 0, "bench_pix2pix: --dataset ", config.dataset,
                  ": the train split has fewer than ", batch, " images");
    loader_->start_epoch(epoch_++);
  }

  // Makes the next batch current; returns the seconds spent waiting for it
  // and copying it to the device (0 for random inputs).
  double next() {
    if (!loader_) return 0;
    const Clock::time_point start = Clock::now();
    std::optional<data::Batch> batch = loader_->next();
    if (!batch) {
      loader_->start_epoch(epoch_++);
      batch = loader_->next();
    }
    input_ = batch->input.to(device_);
    target_ = batch->target.to(device_);
    synchronize(device_);
    return seconds_since(start);
  }

  const Tensor& input() const { return input_; }
  const Tensor& target() const { return target_; }

 private:
  Device device_;
  std::unique_ptr<data::DataLoader> loader_;
  uint64_t epoch_ = 0;
  Tensor input_, target_;
};

struct Phases {
  std::vector<double> data, g_forward, d_both, g_backward, optimizer;
  void add(double data_seconds, const models::PhaseTimes& p) {
    data.push_back(data_seconds);
    g_forward.push_back(p.g_forward);
    d_both.push_back(p.d_forward_backward);
    g_backward.push_back(p.g_backward);
    optimizer.push_back(p.optimizer);
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_pix2pix: time pix2pix training steps (both presets, several batch sizes)"};
  apps::last_value_wins(app);
  std::string presets = "paper,chainer", batches = "1,4,16", device_name = "auto", json_path, conv_impl;
  int size = 256, iterations = 5, warmup = 2, input_channels = 0;
  training::TrainConfig data_config;
  app.add_option("--presets", presets, "Comma-separated: paper, chainer")->capture_default_str();
  app.add_option("--batch-sizes", batches, "Comma-separated batch sizes (run smallest first)")->capture_default_str();
  app.add_option("--size", size,
                 "Image side: a multiple of 2 to the power of the U-Net's levels (256 for paper, 128 for chainer)")
      ->capture_default_str();
  app.add_option("--iterations", iterations, "Timed steps per configuration")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--warmup", warmup, "Untimed steps first")->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--device", device_name, "auto | cpu | cuda | cuda:N")->capture_default_str();
  app.add_option("--conv-impl", conv_impl, "CUDA convolutions: handwritten (default) | cudnn | cublas");
  std::string precision;
  bool tf32 = false;
  apps::add_precision_options(app, precision, tf32, ". tf32 is PyTorch's default for cuDNN");
  std::string moments;
  app.add_option("--moments", moments,
                 "on | off: batch norms take their statistics from the moments their convolutions write (default: "
                 "PIXGRAD_CONV_MOMENTS, else on); off times the step with the norms' own passes")
      ->check(CLI::IsMember({"on", "off"}));
  app.add_option("--input-channels", input_channels,
                 "Input channels of random inputs: 3 or 12 (default: the preset's reference, paper 3, chainer "
                 "12; with --dataset, --format decides)")
      ->check(CLI::IsMember({3, 12}));
  app.add_option("--dataset", data_config.dataset,
                 "Feed real batches from this dataset's train split through data::DataLoader (times the data phase)");
  app.add_option("--format", data_config.format, "With --dataset: aligned | cmp")
      ->check(CLI::IsMember({"aligned", "cmp"}))
      ->capture_default_str();
  app.add_option("--direction", data_config.direction, "With --dataset, aligned: AtoB | BtoA")
      ->check(CLI::IsMember({"AtoB", "BtoA"}))
      ->capture_default_str();
  app.add_option("--workers", data_config.workers, "With --dataset: loader threads")->capture_default_str();
  app.add_option("--json", json_path, "Also write the results as JSON (one record per configuration)");
  bool cuda_graph = false;
  app.add_flag("--cuda-graph", cuda_graph,
               "Also time the step captured as one CUDA graph and replayed (on the CPU: the stand-in that runs it "
               "again at each replay, for checking only)");
  app.footer(
      "Columns beyond the times: conv TF/s, the step's convolution FLOPs over its time; FMA %, the same as a "
      "percentage of the CPU's FP32 FMA ceiling, measured at the start (CPU only; bf16 dot products can pass "
      "100 %); peak MiB, the GPU allocator's "
      "high-water mark (CUDA only); RSS MiB, the process's peak resident memory (VmHWM) while the configuration "
      "ran, or, where the kernel cannot reset that mark, the peak so far in the process (configurations run "
      "smallest batch first).");
  if (const std::optional<int> status = apps::parse_command_line(app, argc, argv, "bench_pix2pix")) return *status;

  try {
    const Device device = Device::parse(device_name);
    std::string no_gpu;
    PIXGRAD_CHECK(device.is_cpu() || cuda_device_count(&no_gpu) > 0, "--device ", device_name, ": no usable GPU (",
                  no_gpu, ")");
    training::select_conv_impl(conv_impl);
    const std::string selected_precision = training::select_precision(precision, tf32);
    if (!moments.empty()) kernels::set_conv_moments(moments == "on");
    // Only our convolutions write moments: with cuDNN or cuBLAS they are off whatever the setting.
    const char* const moments_in_effect =
        kernels::conv_moments() && (device.is_cpu() || conv_impl_name(device) == "handwritten") ? "on" : "off";
    const std::string device_description = describe_device(device);
    std::vector<int> batch_sizes = parse_list(batches);
    std::sort(batch_sizes.begin(), batch_sizes.end());
    std::printf("device: %s (%s), convolutions: %s in %s, moments %s, %s inputs, %d warm-up + %d timed steps "
                "(median)\n",
                device.str().c_str(), device_description.c_str(), conv_impl_name(device).c_str(),
                precision_in_effect(device).c_str(), moments_in_effect,
                data_config.dataset.empty() ? "random" : ("dataset " + data_config.dataset).c_str(), warmup,
                iterations);
    // The FMA ceiling only: the copy ceiling's 512 MiB of buffers would be
    // most of a small configuration's resident memory, and no figure here is
    // held to it.
    std::optional<double> fma_ceiling_gflops;
    if (device.is_cpu()) {
      fma_ceiling_gflops = bench::cpu_fma_gflops();
      std::printf("cpu ceilings: FMA %.0f GFLOP/s (%d threads); FMA %%: the step's convolution FLOPs over its "
                  "time, as a percentage of it\n",
                  *fma_ceiling_gflops, omp_get_max_threads());
      if (precision_in_effect(device) == "bf16")
        std::printf("bf16: each dot-product instruction does two multiply-adds per lane, so FMA %% may pass 100\n");
      else if (selected_precision == "bf16")
        std::printf("note: %s\n", training::describe_convolutions(device, selected_precision, "").c_str());
    }
    if (device.is_cuda())
      std::printf("peak MiB: the allocator's high-water mark of tensor memory; '<=' where an earlier, larger "
                  "configuration set it\n");
    // Reset before each configuration where the kernel allows it.
    const bool rss_resets = reset_peak_rss();
    const char* const rss_scope = rss_resets ? "configuration" : "process_so_far";
    std::printf("RSS MiB: %s\n", rss_resets ? "the process's peak resident memory (VmHWM) while the configuration ran"
                                            : "peak RSS so far in the process (VmHWM, which cannot be reset here; "
                                              "configurations run smallest batch first)");
    std::printf("%-8s %3s %5s %10s %8s %9s | %8s %8s %8s %8s %8s | %9s %6s %9s %9s\n", "preset", "in", "batch",
                "s/iter", "iter/s", "images/s", "data", "G fwd", "D f+b", "G bwd", "optim", "conv TF/s", "FMA %",
                "peak MiB", "RSS MiB");

    nlohmann::json results = nlohmann::json::array();
    std::stringstream preset_list(presets);
    for (std::string preset; std::getline(preset_list, preset, ',');) {
      for (const int batch : batch_sizes) {
        if (device.is_cuda()) cuda_empty_cache();  // the previous configuration's blocks
        if (rss_resets) reset_peak_rss();           // the previous configuration's model and batches are freed
        training::TrainConfig config = data_config;
        config.preset = preset;
        config.crop_size = size;
        config.load_size = size * 286 / 256;
        if (config.dataset.empty()) {
          const int channels = input_channels > 0 ? input_channels
                                                  : static_cast<int>(bench::preset_input_channels(preset));
          config.format = channels == 12 ? "cmp" : "aligned";
        }
        manual_seed(1);
        models::Pix2Pix model(training::pix2pix_options(config));
        model.to(device);
        BatchSource source(config, batch, size, device);
        const int64_t peak_before = device.is_cuda() ? cuda_memory_stats(device.index()).peak_bytes_in_use : 0;

        for (int i = 0; i < warmup; ++i) {
          source.next();
          model.train_step(source.input(), source.target());
        }
        synchronize(device);
        // Whole steps, data included. On the CPU the phase clock costs
        // nothing (synchronize is a no-op), so these steps give the phases too.
        std::vector<double> totals;
        Phases phases;
        model.set_timing(device.is_cpu());
        for (int i = 0; i < iterations; ++i) {
          const Clock::time_point start = Clock::now();
          const double data_seconds = source.next();
          model.train_step(source.input(), source.target());
          synchronize(device);
          totals.push_back(seconds_since(start));
          if (device.is_cpu()) phases.add(data_seconds, model.last_phase_times());
        }
        // pixgrad's own kernel launches in one whole step (cuDNN's and cuBLAS's not counted).
        std::optional<int64_t> launches;
        if (device.is_cuda()) {
          const int64_t before = cuda_kernel_launches();
          source.next();
          model.train_step(source.input(), source.target());
          synchronize(device);
          launches = cuda_kernel_launches() - before;
        }
        // The same steps captured once and replayed (models/graphed_step.h):
        // the whole run's time over its steps, since a replay's losses come
        // back one step late and steps overlap on the host.
        std::optional<double> graph_seconds;
        size_t graph_nodes = 0;
        if (cuda_graph) {
          model.set_timing(false);  // a captured step does not synchronise between phases
          models::GraphedTrainStep graphed(model);
          for (int i = 0; i < std::max(warmup, 2); ++i) {  // the eager warm-up step and the capture
            source.next();
            graphed.step(source.input(), source.target());
          }
          graphed.finish();
          synchronize(device);
          const Clock::time_point start = Clock::now();
          for (int i = 0; i < iterations; ++i) {
            source.next();
            graphed.step(source.input(), source.target());
          }
          graphed.finish();
          synchronize(device);
          graph_seconds = seconds_since(start) / iterations;
          graph_nodes = graphed.graph_nodes();
        }
        if (device.is_cuda()) {
          model.set_timing(true);
          for (int i = 0; i < iterations; ++i) {
            const double data_seconds = source.next();
            model.train_step(source.input(), source.target());
            phases.add(data_seconds, model.last_phase_times());
          }
        }

        const double seconds = median(totals);
        const double conv_flops =
            bench::iteration_cost(bench::preset_layers(preset, batch, size, source.input().size(1))).conv_flops;
        char peak_text[32] = "-";
        nlohmann::json peak_bytes = nullptr, in_use_bytes = nullptr;
        bool peak_is_upper_bound = false;
        if (device.is_cuda()) {
          const CudaMemoryStats stats = cuda_memory_stats(device.index());
          peak_is_upper_bound = stats.peak_bytes_in_use <= peak_before && peak_before > 0;
          std::snprintf(peak_text, sizeof peak_text, "%s%.0f", peak_is_upper_bound ? "<=" : "",
                        stats.peak_bytes_in_use / 1048576.0);
          peak_bytes = stats.peak_bytes_in_use;
          in_use_bytes = stats.bytes_in_use;
        }
        std::optional<double> percent_of_fma;
        char percent_text[16] = "-";
        if (fma_ceiling_gflops) {
          percent_of_fma = 100 * conv_flops / seconds / (*fma_ceiling_gflops * 1e9);
          std::snprintf(percent_text, sizeof percent_text, "%.1f", *percent_of_fma);
        }
        const std::optional<double> rss_mib = peak_rss_mib();
        char rss_text[32] = "-";
        if (rss_mib) std::snprintf(rss_text, sizeof rss_text, "%.0f", *rss_mib);
        std::printf("%-8s %3lld %5d %10.4f %8.2f %9.2f | %8.4f %8.4f %8.4f %8.4f %8.4f | %9.2f %6s %9s %9s\n",
                    preset.c_str(), static_cast<long long>(source.input().size(1)), batch, seconds, 1 / seconds,
                    batch / seconds, median(phases.data), median(phases.g_forward), median(phases.d_both),
                    median(phases.g_backward), median(phases.optimizer), conv_flops / seconds / 1e12, percent_text,
                    peak_text, rss_text);

        if (launches)
          std::printf("    kernel launches per step: %lld (pixgrad's own; cuDNN and cuBLAS calls not counted)\n",
                      static_cast<long long>(*launches));
        if (graph_seconds && device.is_cuda())
          std::printf("    cuda graph: %.4f s/iter, %.2fx the eager step's %.4f s; one launch of %zu nodes per step\n",
                      *graph_seconds, seconds / *graph_seconds, seconds, graph_nodes);
        else if (graph_seconds)
          std::printf("    captured step: %.4f s/iter (the CPU stand-in runs each step again, at eager cost: for "
                      "checking, not speed)\n",
                      *graph_seconds);
        nlohmann::json goal_json = nullptr;
        if (const std::optional<Goal> goal = goal_for(preset, batch, device, device_description)) {
          const double ratio = seconds / goal->seconds;
          std::printf("    goal: %s: %s eagerly (%.4g s/iter is %.2fx the goal)\n", goal->description.c_str(),
                      ratio <= 1 ? "met" : "not met", seconds, ratio);
          goal_json = {{"description", goal->description}, {"seconds", goal->seconds}, {"met", ratio <= 1},
                       {"ratio", ratio}};
          // The step a run with --cuda-graph takes is judged too.
          if (graph_seconds && device.is_cuda()) {
            const double graph_ratio = *graph_seconds / goal->seconds;
            std::printf("    goal: %s: %s with --cuda-graph (%.4g s/iter is %.2fx the goal)\n",
                        goal->description.c_str(), graph_ratio <= 1 ? "met" : "not met", *graph_seconds,
                        graph_ratio);
            goal_json["graph_met"] = graph_ratio <= 1;
            goal_json["graph_ratio"] = graph_ratio;
          }
        } else {
          std::printf("    goal: none set for %s batch %d on %s\n", preset.c_str(), batch,
                      device.is_cpu() ? "the CPU" : "the GPU");
        }
        std::fflush(stdout);
        results.push_back({{"preset", preset},
                           {"batch", batch},
                           {"size", size},
                           {"input_channels", source.input().size(1)},
                           {"inputs", data_config.dataset.empty() ? "random" : "dataset"},
                           {"device", device.str()},
                           {"device_name", device_description},
                           {"conv_impl", conv_impl_name(device)},
                           {"precision", precision_in_effect(device)},
                           {"tf32", precision_in_effect(device) == "tf32"},
                           {"conv_moments", moments_in_effect},
                           {"iterations", iterations},
                           {"warmup", warmup},
                           {"seconds_per_iteration", seconds},
                           {"images_per_second", batch / seconds},
                           {"conv_gflop_per_iteration", conv_flops / 1e9},
                           {"fma_ceiling_gflops", optional_json(fma_ceiling_gflops)},
                           {"percent_of_fma_ceiling", optional_json(percent_of_fma)},
                           {"phases", {{"data", median(phases.data)},
                                       {"g_forward", median(phases.g_forward)},
                                       {"d_forward_backward", median(phases.d_both)},
                                       {"g_backward", median(phases.g_backward)},
                                       {"optimizer", median(phases.optimizer)}}},
                           {"kernel_launches_per_step", launches ? nlohmann::json(*launches) : nlohmann::json(nullptr)},
                           {"graph_seconds_per_iteration", optional_json(graph_seconds)},
                           {"graph_nodes", graph_seconds && device.is_cuda() ? nlohmann::json(graph_nodes)
                                                                             : nlohmann::json(nullptr)},
                           {"peak_device_bytes", peak_bytes},
                           {"peak_is_upper_bound", peak_is_upper_bound},
                           {"device_bytes_in_use_after", in_use_bytes},
                           {"peak_rss_mib", optional_json(rss_mib)},
                           {"peak_rss_scope", rss_mib ? nlohmann::json(rss_scope) : nlohmann::json(nullptr)},
                           {"goal", goal_json}});
        // After every configuration: a run stopped early keeps what it measured.
        if (!json_path.empty()) apps::write_json_file(json_path, results);
      }
    }
    return 0;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "bench_pix2pix: %s\n", io::printable(error.what()).c_str());
    return 1;
  }
}
