// pix2pix_prepare: makes aligned A|B training sets for train_pix2pix.
//   combine  pairs the images of two folders by file stem (the pix2pix
//            reference's combine_A_and_B);
//   edges    turns a folder of photos into line art | photo pairs.
// The work is in data/pairing.h and data/line_art.h; see docs/prepare.md.
#include <CLI/CLI.hpp>

#include "command_line.h"

#include <cstdio>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <pixgrad/core/error.h>
#include <pixgrad/core/file_io.h>
#include <pixgrad/data/image.h>
#include <pixgrad/data/pairing.h>
#include <pixgrad/training/progress.h>

namespace {

using namespace pixgrad;

struct CombineArgs {
  std::string a, b, output;
  bool overwrite = false;
};

struct EdgesArgs {
  std::string input, output, method = "xdog";
  std::vector<std::string> extensions;
  int size = 256;
  int test_count = -1;
  bool overwrite = false;
};

int run_combine(const CombineArgs& args) {
  const std::vector<data::PairTask> written = data::combine_folders(args.a, args.b, args.output, args.overwrite);
  std::printf("wrote %zu A|B pair(s) to '%s'\n", written.size(), io::printable(args.output).c_str());
  return 0;
}

// Each photo is independent: a damaged one is reported and skipped (as
// pix2pix_translate does), and the exit status says that some were.
int run_edges(const EdgesArgs& args) {
  data::LineArtPairOptions options;
  options.size = args.size;
  options.method = args.method == "canny" ? data::LineArtMethod::Canny : data::LineArtMethod::Xdog;
  PIXGRAD_CHECK(args.size >= 0 && args.size <= data::kMaxImageSide / 2, "--size must be in [0, ",
                data::kMaxImageSide / 2, "] (a pair is twice as wide, at most ", data::kMaxImageSide,
                "), got ", args.size);
  const std::vector<data::PairTask> tasks =
      data::plan_line_art(args.input, args.extensions, args.output, args.test_count, args.overwrite);
  // Only the splits that receive photos: an empty test/ would stop train_pix2pix.
  std::set<std::filesystem::path> folders;
  for (const data::PairTask& task : tasks) folders.insert(std::filesystem::path(task.output).parent_path());
  for (const std::filesystem::path& folder : folders) {
    std::error_code error;
    std::filesystem::create_directories(folder, error);
    PIXGRAD_CHECK(!error, "output folder '", io::printable(folder.string()), "': cannot create it: ", error.message());
  }
  std::printf("drawing %s line art for %zu photo(s)\n", args.method.c_str(), tasks.size());
  training::ProgressBar progress(static_cast<int64_t>(tasks.size()), 0, 10);
  std::vector<std::string> failures;
  for (size_t i = 0; i < tasks.size(); ++i) {
    try {
      data::save_png(tasks[i].output, data::line_art_pair(data::load_image(tasks[i].a), options));
    } catch (const Error& error) {
      // A file the decoder refused names itself; anything later is named here.
      const std::string what = error.what();
      const std::string name = io::printable(tasks[i].a);
      failures.push_back(what.find(name) != std::string::npos ? what : "'" + name + "': " + what);
    }
    progress.update(static_cast<int64_t>(i + 1), io::printable(std::filesystem::path(tasks[i].a).filename().string()));
  }
  progress.finish();
  std::printf("wrote %zu line art | photo pair(s) to '%s'\n", tasks.size() - failures.size(),
              io::printable(args.output).c_str());
  for (const std::string& failure : failures)
    std::fprintf(stderr, "pix2pix_prepare: skipped: %s\n", io::printable(failure).c_str());
  if (failures.empty()) return 0;
  std::fprintf(stderr, "pix2pix_prepare: %zu of %zu photo(s) could not be made into pairs\n", failures.size(),
               tasks.size());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pix2pix_prepare: make aligned A|B training sets for train_pix2pix"};
  app.require_subcommand(1);
  app.footer("Run 'pix2pix_prepare SUBCOMMAND --help' for each subcommand's options.");

  CombineArgs combine;
  CLI::App* combine_app = app.add_subcommand(
      "combine", "Pair the images of two folders by file stem into A|B images (pix2pix's combine_A_and_B)");
  combine_app->footer(
      "A and B must have the same width and height; if their channel counts differ, the one with fewer is\n"
      "widened (grey + RGB -> RGB). If --a holds only sub-folders (train/, test/ ...), each is paired with\n"
      "the sub-folder of the same name in --b and written to --output/<name>/.\n"
      "Example:\n"
      "  pix2pix_prepare combine --a photos/ --b labels/ --output paired/");
  combine_app->add_option("--a", combine.a, "Folder of A images (left halves), or of split sub-folders")->required();
  combine_app->add_option("--b", combine.b, "Folder of B images (right halves), with the same file stems")->required();
  combine_app->add_option("--output", combine.output, "Folder for <stem>.png A|B images")->required();
  combine_app->add_flag("--overwrite", combine.overwrite, "Replace files already in --output (inputs never)");

  EdgesArgs edges;
  CLI::App* edges_app =
      app.add_subcommand("edges", "Turn a folder of photos into line art | photo pairs (edges -> photo training)");
  edges_app->footer(
      "The photos are taken in name order: the last --test-count go to --output/test/, the rest to\n"
      "--output/train/.\n"
      "Example (the CMP facade photos, leaving out their label PNGs):\n"
      "  pix2pix_prepare edges --input ../shared/data/cmp_facade_base --extension jpg --output edges2facades/");
  edges_app->add_option("--input", edges.input, "Folder of photos")->required();
  edges_app->add_option("--output", edges.output, "Folder for train/ and test/ of <stem>.png pairs")->required();
  edges_app->add_option("--size", edges.size, "Resize each photo to size x size first (0 keeps its size)")
      ->capture_default_str();
  edges_app->add_option("--method", edges.method, "Line art: xdog (soft strokes) | canny (1-pixel edges)")
      ->check(CLI::IsMember({"xdog", "canny"}))
      ->capture_default_str();
  edges_app->add_option("--extension", edges.extensions,
                        "Only photos with this extension, e.g. jpg (repeat or comma-separate for more; "
                        "default: jpg, jpeg, png)")
      ->delimiter(',');
  edges_app->add_option("--test-count", edges.test_count,
                        "Photos for test/ (default: a tenth of them, rounded; 0: all to train/)");
  edges_app->add_flag("--overwrite", edges.overwrite, "Replace files already in --output (inputs never)");
  if (const std::optional<int> status = pixgrad::apps::parse_command_line(app, argc, argv, "pix2pix_prepare")) return *status;

  try {
    if (combine_app->parsed()) return run_combine(combine);
    PIXGRAD_CHECK(edges.test_count >= 0 || edges_app->count("--test-count") == 0,
                  "--test-count must be 0 or more, got ", edges.test_count);
    return run_edges(edges);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "pix2pix_prepare: %s\n", io::printable(error.what()).c_str());
    return 1;
  }
}
