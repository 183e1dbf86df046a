// pix2pix_translate: runs a trained generator over an image or a folder of
// images and writes one PNG per input. By default the generator runs as in
// the paper at test time (batch statistics, dropout on); --eval uses the
// running statistics and no dropout.
#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <pixgrad/core/autograd.h>
#include <pixgrad/core/error.h>
#include <pixgrad/core/file_io.h>
#include <pixgrad/core/generator.h>
#include <pixgrad/data/datasets.h>
#include <pixgrad/data/image.h>
#include <pixgrad/models/networks.h>
#include <pixgrad/training/preview.h>
#include <pixgrad/training/checkpoint.h>
#include <pixgrad/training/model_factory.h>
#include <pixgrad/training/output_names.h>
#include <pixgrad/training/progress.h>

namespace {

using namespace pixgrad;

std::vector<std::string> input_files(const std::string& input) {
  if (std::filesystem::is_directory(input)) {
    std::vector<std::string> files = data::list_image_files(input);
    PIXGRAD_CHECK(!files.empty(), "input '", input, "': no .jpg/.jpeg/.png files in this folder");
    return files;
  }
  PIXGRAD_CHECK(std::filesystem::exists(input), "input '", io::printable(input), "': no such file or folder");
  PIXGRAD_CHECK(std::filesystem::is_regular_file(input), "input '", io::printable(input),
                "': not a regular file or a folder");
  return {input};
}

// The generator's input for one file, [1, C, size, size]: an RGB image in
// [-1, 1], or for CMP-trained models a label PNG (classes 1..12) as one-hot.
Tensor load_input(const std::string& path, const training::TrainConfig& config, int size) {
  Tensor chw;
  if (config.format == "cmp") {
    const data::Image labels = data::resize_nearest(data::load_label_image(path), size, size);
    chw = data::labels_to_one_hot(labels, 12, 1, path);
  } else {
    const data::Preprocessing pre = training::preprocessing(config);
    chw = data::image_to_tensor(data::resize_photo(data::to_rgb(data::load_image(path), path), size, size, pre.resample),
                                path, pre.pixel_divisor);
  }
  return chw.reshape({1, chw.size(0), chw.size(1), chw.size(2)});
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pix2pix_translate: translate images with a generator trained by train_pix2pix"};
  app.footer(
      "Example:\n"
      "  pix2pix_translate --checkpoint out/facades/checkpoint.safetensors --input labels/ --output translated/");
  std::string checkpoint_path, input, output = "translated", device_name = "auto";
  int size = 0;
  bool eval_mode = false;
  uint64_t seed = 0;
  app.add_option("--checkpoint", checkpoint_path, "A checkpoint written by train_pix2pix")->required();
  app.add_option("--input", input, "An image, or a folder of .jpg/.png images")->required();
  app.add_option("--output", output, "Folder for the translated PNGs")->capture_default_str();
  app.add_option("--size", size, "Resize inputs to size x size (0: the training crop size)")->capture_default_str();
  app.add_flag("--eval", eval_mode, "Use running statistics and no dropout (default: batch statistics, dropout on)");
  app.add_option("--seed", seed, "Seed of the dropout masks")->capture_default_str();
  app.add_option("--device", device_name, "auto | cpu | cuda | cuda:N")->capture_default_str();
  std::string conv_impl;
  app.add_option("--conv-impl", conv_impl, "CUDA convolutions: handwritten (default) | cudnn | cublas");
  bool tf32 = false;
  app.add_flag("--tf32", tf32, "Let cuDNN and cuBLAS convolutions use TF32 tensor cores (default: plain FP32)");
  bool overwrite = false;
  app.add_flag("--overwrite", overwrite, "Replace results already in --output (inputs are never replaced)");
  CLI11_PARSE(app, argc, argv);

  try {
    const training::Checkpoint checkpoint = training::load_checkpoint(checkpoint_path);
    const training::TrainConfig& config = checkpoint.config;
    training::validate(config);
    if (size == 0) size = config.crop_size;
    PIXGRAD_CHECK(size > 0, "--size must be positive, got ", size);
    const models::Pix2PixOptions options = training::pix2pix_options(config);
    const std::shared_ptr<nn::Module> generator = models::make_generator(options.preset, options.generator);
    const int64_t multiple = options.generator.size_multiple();
    PIXGRAD_CHECK(size % multiple == 0, "--size ", size, " must be a multiple of ", multiple);
    std::map<std::string, Tensor> weights;
    for (const auto& [name, tensor] : checkpoint.tensors)
      if (name.rfind("G.", 0) == 0) weights.emplace(name.substr(2), tensor);
    for (const auto& [name, tensor] : weights)
      for (const double v : tensor.to_double_vector())
        PIXGRAD_CHECK(std::isfinite(v), "checkpoint '", io::printable(checkpoint_path), "': G.", io::printable(name),
                      " holds ", v, " (a diverged state?); translate with an earlier checkpoint");
    try {
      generator->load_state_dict(weights);
    } catch (const Error& error) {
      fail("checkpoint '", io::printable(checkpoint_path), "': ", error.what());
    }
    const Device device = Device::parse(device_name);
    training::select_conv_impl(conv_impl);
    training::select_tf32(tf32);
    generator->to(device);
    generator->train(!eval_mode);
    default_generator().set_state(seed, 0);

    const std::vector<std::string> files = input_files(input);
    // Every output name is settled, and checked, before anything is written.
    const std::vector<std::string> outputs = training::translation_outputs(files, output, overwrite);
    std::error_code error;
    std::filesystem::create_directories(output, error);
    PIXGRAD_CHECK(!error, "output folder '", io::printable(output), "': cannot create it: ", error.message());

    std::printf("translating %zu image(s) with the %s generator (%s mode) on %s\n", files.size(),
                config.preset.c_str(), eval_mode ? "eval" : "test-time", device.str().c_str());
    training::ProgressBar progress(static_cast<int64_t>(files.size()), 0, 10);
    NoGradGuard no_grad;
    // A damaged input is reported and skipped; the others are still translated.
    std::vector<std::string> failures;
    for (size_t i = 0; i < files.size(); ++i) {
      try {
        const Tensor generated = generator->forward(load_input(files[i], config, size).to(device)).to(Device::cpu());
        data::save_png(outputs[i], training::tensor_to_image(generated.reshape({generated.size(1), size, size})));
      } catch (const Error& error) {
        failures.push_back(error.what());
      }
      progress.update(static_cast<int64_t>(i + 1), io::printable(std::filesystem::path(outputs[i]).filename().string()));
    }
    progress.finish();
    std::printf("wrote %zu PNG(s) to '%s'\n", files.size() - failures.size(), io::printable(output).c_str());
    for (const std::string& failure : failures)
      std::fprintf(stderr, "pix2pix_translate: skipped: %s\n", io::printable(failure).c_str());
    if (!failures.empty()) {
      std::fprintf(stderr, "pix2pix_translate: %zu of %zu input(s) could not be translated\n", failures.size(),
                   files.size());
      return 1;
    }
    return 0;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "pix2pix_translate: %s\n", io::printable(error.what()).c_str());
    return 1;
  }
}
