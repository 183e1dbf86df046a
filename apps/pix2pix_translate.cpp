// pix2pix_translate: runs a trained generator over an image or a folder of
// images at test time. Each result is written as <name>.png at the size its
// input was prepared to; with --aligned the inputs are A|B pairs, the other
// half is the ground truth, and the mean L1, PSNR and SSIM over the set are
// reported. index.html shows input | generated | truth for every image. By
// default the generator runs as in the paper at test time (batch
// statistics, dropout on); --eval uses the running statistics and no dropout.
#include <CLI/CLI.hpp>

#include "command_line.h"

#include <cmath>
#include <cstdio>
#include <optional>
#include <filesystem>
#include <new>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <pixgrad/core/error.h>
#include <pixgrad/core/file_io.h>
#include <pixgrad/core/generator.h>
#include <pixgrad/data/datasets.h>
#include <pixgrad/distributed/mpi_communicator.h>
#include <pixgrad/training/checkpoint.h>
#include <pixgrad/training/html_report.h>
#include <pixgrad/training/model_factory.h>
#include <pixgrad/training/output_names.h>
#include <pixgrad/training/progress.h>
#include <pixgrad/training/translation.h>

namespace {

using namespace pixgrad;
namespace fs = std::filesystem;

std::vector<std::string> input_files(const std::string& input, int64_t limit) {
  std::vector<std::string> files;
  if (fs::is_directory(input)) {
    files = data::list_image_files(input);
  } else {
    PIXGRAD_CHECK(fs::exists(input), "input '", io::printable(input), "': no such file or folder");
    PIXGRAD_CHECK(fs::is_regular_file(input), "input '", io::printable(input), "': not a regular file or a folder");
    files = {input};
  }
  if (limit > 0 && files.size() > static_cast<size_t>(limit)) files.resize(static_cast<size_t>(limit));
  return files;
}

// A number for JSON; JSON has no infinity (identical images have infinite
// PSNR) nor NaN (a generator that outputs NaN), so those become strings,
// alike in every field.
nlohmann::json json_number(double value) {
  if (std::isfinite(value)) return value;
  return std::isnan(value) ? "nan" : value > 0 ? "inf" : "-inf";
}

struct Totals {
  double l1 = 0, psnr = 0, ssim = 0;
  size_t count = 0;
  void add(const training::Scores& s) {
    l1 += s.l1;
    psnr += s.psnr;
    ssim += s.ssim;
    ++count;
  }
};

std::string relative_to(const std::string& path, const std::string& folder) {
  return fs::path(path).lexically_relative(folder).generic_string();
}

void write_json(const std::string& path, const nlohmann::json& json) {
  const std::string text = json.dump(2) + "\n";
  io::write_file_atomically(path, "metrics", [&](std::FILE* file) {
    return std::fwrite(text.data(), 1, text.size(), file) == text.size();
  });
}

}  // namespace

int main(int argc, char** argv) {
  // Every rank would translate every input into the same files.
  if (distributed::launched_processes() > 1) {
    if (distributed::launched_rank() == 0)
      std::fprintf(stderr, "pix2pix_translate: it runs as one process and does not share its inputs among ranks; "
                   "run it without mpirun or srun\n");
    return 1;
  }
  CLI::App app{"pix2pix_translate: translate images with a generator trained by train_pix2pix"};
  app.footer(
      "Examples:\n"
      "  pix2pix_translate --checkpoint out/facades/checkpoint.safetensors --input ../shared/data/facades/test \\\n"
      "      --aligned --output results/facades\n"
      "  pix2pix_translate --checkpoint out/facades/checkpoint.safetensors --input labels/ --output translated/\n"
      "Writes <name>.png per input, images/ (inputs and truths for the page), index.html and, with --aligned,\n"
      "metrics.json. Exit status: 0 done, 1 an error (an option's value out of range included) or an input that\n"
      "could not be translated; 100 and above: the command line was refused as it was read (an unknown option, a\n"
      "value not of the option's type, such as a --seed that is not a whole number).");
  std::string checkpoint_path, input, output = "translated", device_name = "auto";
  training::TranslationOptions options;
  apps::last_value_wins(app);
  uint64_t seed = 0;
  int64_t num_test = 0;
  app.add_option("--checkpoint", checkpoint_path,
                 "A checkpoint written by train_pix2pix (checkpoint.safetensors or checkpoints/epoch_N.safetensors)")
      ->required();
  app.add_option("--input", input, "An image, or a folder of .jpg/.png images")->required();
  app.add_option("--output", output, "Folder for the results")->capture_default_str();
  app.add_flag("--aligned", options.aligned,
               "Inputs are A|B pairs as in training data: one half is translated (--direction), the other is the "
               "ground truth; reports mean L1, PSNR and SSIM");
  app.add_option("--direction", options.direction, "With --aligned: AtoB | BtoA (default: the checkpoint's)");
  app.add_option("--preprocess", options.preprocess,
                 "resize_and_crop (a --size square) | scale_width | scale_width_and_crop (width --size, height "
                 "keeping the aspect ratio) | crop | none (the image's own size); default: the checkpoint's. "
                 "Sizes are padded to the U-Net's multiple and cropped back");
  app.add_option("--size", options.size, "The --preprocess size (0: the training crop size, or for scale_width "
                                         "the training load size)")
      ->capture_default_str();
  app.add_option("--aspect-ratio", options.aspect_ratio,
                 "Width/height factor of the written images (> 1 wider, < 1 taller)")
      ->capture_default_str();
  app.add_option("--num-test", num_test, "Translate only the first N inputs (0: all)")->capture_default_str();
  app.add_flag("--eval", options.eval_mode,
               "Use running statistics and no dropout (default: batch statistics, dropout on)");
  app.add_option("--seed", seed, "Seed of the dropout masks")
      ->transform(pixgrad::apps::unsigned_64_bits())
      ->capture_default_str();
  app.add_option("--device", device_name, "auto | cpu | cuda | cuda:N")->capture_default_str();
  std::string conv_impl;
  app.add_option("--conv-impl", conv_impl, "CUDA convolutions: handwritten (default) | cudnn | cublas");
  std::string precision;
  bool tf32 = false;
  apps::add_precision_options(app, precision, tf32);
  bool overwrite = false;
  app.add_flag("--overwrite", overwrite, "Replace results already in --output (inputs are never replaced)");
  if (const std::optional<int> status = pixgrad::apps::parse_command_line(app, argc, argv, "pix2pix_translate")) return *status;

  try {
    PIXGRAD_CHECK(num_test >= 0, "--num-test must be >= 0, got ", num_test);
    PIXGRAD_CHECK(options.size >= 0, "--size must be >= 0, got ", options.size);
    PIXGRAD_CHECK(options.direction.empty() || options.aligned, "--direction needs --aligned (A|B pairs)");
    const training::Checkpoint checkpoint = training::load_checkpoint(checkpoint_path);
    const Device device = Device::parse(device_name);
    const std::string convolutions = training::describe_convolutions(
        device, training::select_precision(precision, tf32), training::select_conv_impl(conv_impl));
    const training::Translator translator(checkpoint, checkpoint_path, options, device);
    default_generator().set_state(seed, 0);

    const std::vector<std::string> files = input_files(input, num_test);
    // Every output name is settled, and checked, before anything is written.
    const std::vector<training::TranslationFiles> outputs =
        training::translation_files(files, output, overwrite, options.aligned);
    std::error_code error;
    // images/ is ours: a link there would send the page's images somewhere else.
    const fs::path images = fs::path(output) / "images";
    PIXGRAD_CHECK(!fs::is_symlink(images, error), "'", io::printable(images.string()),
                  "' is a link: results are written only into real folders; remove it or choose another --output");
    fs::create_directories(fs::path(output) / "images", error);
    PIXGRAD_CHECK(!error, "output folder '", io::printable(output), "': cannot create it: ", error.message());

    std::printf("translating %zu %s with the %s generator (%s mode, --preprocess %s) on %s (%s)\n", files.size(),
                options.aligned ? "A|B pair(s)" : "image(s)", translator.config().preset.c_str(),
                options.eval_mode ? "eval" : "test-time", data::preprocess_name(translator.mode()),
                device.str().c_str(), convolutions.c_str());
    training::ProgressBar progress(static_cast<int64_t>(files.size()), 0, 10);
    training::TestPage page;
    // "data/test/" names itself "test", as "data/test" does.
    fs::path named = fs::path(input).lexically_normal();
    if (named.filename().empty()) named = named.parent_path();
    page.title = "pix2pix results: " + named.filename().string();
    page.checkpoint = checkpoint_path;
    nlohmann::json per_image = nlohmann::json::array();
    Totals totals;
    // A damaged input is reported and skipped; the others are still translated.
    std::vector<std::string> failures;
    for (size_t i = 0; i < files.size(); ++i) {
      const training::TranslationFiles& out = outputs[i];
      try {
        const training::Translation result = translator.translate(files[i]);
        data::save_png(out.generated, result.generated);
        data::save_png(out.input, result.input);
        training::TestRow row{fs::path(out.generated).stem().string(), relative_to(out.input, output),
                              relative_to(out.generated, output), "", {}, {}, {}};
        if (result.scores) {
          data::save_png(out.truth, result.truth);
          row.truth = relative_to(out.truth, output);
          row.l1 = result.scores->l1;
          row.psnr = result.scores->psnr;
          row.ssim = result.scores->ssim;
          totals.add(*result.scores);
          per_image.push_back({{"name", io::printable(row.name)}, {"l1", json_number(result.scores->l1)},
                               {"psnr", json_number(result.scores->psnr)}, {"ssim", json_number(result.scores->ssim)}});
        }
        page.rows.push_back(row);
      } catch (const std::bad_alloc&) {
        const std::string reason = "image '" + io::printable(files[i]) + "': out of memory (too large; try --size)";
        failures.push_back(reason);
        page.skipped.push_back(reason);
      } catch (const Error& error) {
        failures.push_back(error.what());
        page.skipped.push_back(io::printable(error.what()));
      }
      progress.update(static_cast<int64_t>(i + 1), io::printable(fs::path(out.generated).filename().string()));
    }
    progress.finish();
    if (totals.count > 0) {
      const double n = static_cast<double>(totals.count);
      page.mean_l1 = totals.l1 / n;
      page.mean_psnr = totals.psnr / n;
      page.mean_ssim = totals.ssim / n;
      std::printf("mean over %zu image(s): L1 %.4f  PSNR %.2f dB  SSIM %.4f\n", totals.count, *page.mean_l1,
                  *page.mean_psnr, *page.mean_ssim);
      write_json((fs::path(output) / "metrics.json").string(),
                 {{"checkpoint", io::printable(checkpoint_path)},
                  {"images", totals.count},
                  {"direction", translator.direction() == data::Direction::AtoB ? "AtoB" : "BtoA"},
                  {"device", device.str()},
                  {"convolutions", convolutions},
                  {"mean",
                   {{"l1", json_number(*page.mean_l1)},
                    {"psnr", json_number(*page.mean_psnr)},
                    {"ssim", json_number(*page.mean_ssim)}}},
                  {"per_image", per_image},
                  {"skipped", page.skipped}});
    }
    training::write_test_page((fs::path(output) / "index.html").string(), page);
    std::printf("wrote %zu result(s) and index.html to '%s'\n", page.rows.size(), io::printable(output).c_str());
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
