// bench_pix2pix: end-to-end training-step speed of pix2pix — iterations/s and
// images/s per preset and batch size, the median over timed steps after
// warm-up, with the time split into phases (G forward, D forward/backward,
// G backward, optimiser). Inputs are random tensors of the training shape, so
// the figures are the model's alone (data loading runs on background threads
// in train_pix2pix).
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <vector>

#include "core/cuda_info.h"
#include "core/generator.h"
#include "models/pix2pix.h"
#include "models/training/model_factory.h"

namespace {

using namespace pixgrad;

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

std::vector<int> parse_list(const std::string& text) {
  std::vector<int> values;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) values.push_back(std::stoi(item));
  return values;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_pix2pix: time pix2pix training steps (both presets, several batch sizes)"};
  std::string presets = "paper,chainer", batches = "1", device_name = "auto", json_path;
  int size = 256, iterations = 5, warmup = 2;
  app.add_option("--presets", presets, "Comma-separated: paper, chainer")->capture_default_str();
  app.add_option("--batch-sizes", batches, "Comma-separated batch sizes")->capture_default_str();
  app.add_option("--size", size, "Image side")->capture_default_str();
  app.add_option("--iterations", iterations, "Timed steps per configuration")->capture_default_str();
  app.add_option("--warmup", warmup, "Untimed steps first")->capture_default_str();
  app.add_option("--device", device_name, "auto | cpu | cuda | cuda:N")->capture_default_str();
  std::string conv_impl;
  app.add_option("--conv-impl", conv_impl, "CUDA convolutions: handwritten (default) | cudnn | cublas");
  app.add_option("--json", json_path, "Also write the results as JSON");
  CLI11_PARSE(app, argc, argv);

  try {
    const Device device = training::resolve_device(device_name);
    training::select_conv_impl(conv_impl);
    nlohmann::json results = nlohmann::json::array();
    std::printf("%-8s %5s %10s %8s %9s | %9s %9s %9s %9s\n", "preset", "batch", "s/iter", "iter/s", "images/s",
                "G fwd", "D f+b", "G bwd", "optim");
    std::stringstream preset_list(presets);
    for (std::string preset; std::getline(preset_list, preset, ',');) {
      for (const int batch : parse_list(batches)) {
        training::TrainConfig config;
        config.preset = preset;
        manual_seed(1);
        models::Pix2Pix model(training::pix2pix_options(config));
        model.to(device);
        model.set_timing(true);
        Generator generator(2);
        const Tensor input = Tensor::uniform({batch, 3, size, size}, -1, 1, generator, device);
        const Tensor target = Tensor::uniform({batch, 3, size, size}, -1, 1, generator, device);
        for (int i = 0; i < warmup; ++i) model.train_step(input, target);
        std::vector<double> total, g_forward, d_both, g_backward, optimizer;
        for (int i = 0; i < iterations; ++i) {
          const auto started = std::chrono::steady_clock::now();
          model.train_step(input, target);
          synchronize(device);
          total.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
          const models::PhaseTimes& phases = model.last_phase_times();
          g_forward.push_back(phases.g_forward);
          d_both.push_back(phases.d_forward_backward);
          g_backward.push_back(phases.g_backward);
          optimizer.push_back(phases.optimizer);
        }
        const double seconds = median(total);
        std::printf("%-8s %5d %10.4f %8.2f %9.2f | %9.4f %9.4f %9.4f %9.4f\n", preset.c_str(), batch, seconds,
                    1 / seconds, batch / seconds, median(g_forward), median(d_both), median(g_backward),
                    median(optimizer));
        std::fflush(stdout);
        results.push_back({{"preset", preset},
                           {"batch", batch},
                           {"size", size},
                           {"device", device.str()},
                           {"seconds_per_iteration", seconds},
                           {"images_per_second", batch / seconds},
                           {"phases", {{"g_forward", median(g_forward)},
                                       {"d_forward_backward", median(d_both)},
                                       {"g_backward", median(g_backward)},
                                       {"optimizer", median(optimizer)}}}});
      }
    }
    if (!json_path.empty()) std::ofstream(json_path) << results.dump(2) << "\n";
    return 0;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "bench_pix2pix: %s\n", error.what());
    return 1;
  }
}
