#include <pixgrad/training/output_names.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include <pixgrad/core/error.h>
#include <pixgrad/core/file_io.h>

namespace pixgrad::training {

namespace fs = std::filesystem;

std::vector<std::string> translation_outputs(const std::vector<std::string>& inputs, const std::string& folder,
                                             bool overwrite) {
  // Results written among the inputs would be read as inputs by the next run.
  std::error_code error;
  const fs::path output_folder = fs::weakly_canonical(folder, error);
  for (const std::string& input : inputs) {
    const fs::path input_folder = fs::weakly_canonical(fs::path(input).parent_path().empty() ? "." : fs::path(input).parent_path(), error);
    const auto [end, unused] = std::mismatch(input_folder.begin(), input_folder.end(), output_folder.begin(), output_folder.end());
    PIXGRAD_CHECK(end != input_folder.end(), "--output '", io::printable(folder), "' is the folder of the inputs (or inside it): "
                  "results there would be taken for inputs next time; choose another folder");
  }
  std::map<std::string, int> stems;
  for (const std::string& input : inputs) ++stems[fs::path(input).stem().string()];

  std::set<fs::path> input_paths;
  for (const std::string& input : inputs) input_paths.insert(fs::weakly_canonical(input, error));

  std::vector<std::string> outputs;
  std::map<std::string, std::string> taken;  // output -> the input written there
  for (const std::string& input : inputs) {
    const fs::path path(input);
    std::string name = path.stem().string();
    if (stems[name] > 1) {
      std::string extension = path.extension().string();
      if (!extension.empty()) extension.erase(0, 1);
      name += "_" + extension;
    }
    const std::string output = (fs::path(folder) / (name + ".png")).string();
    const auto [slot, inserted] = taken.emplace(output, input);
    PIXGRAD_CHECK(inserted, "inputs '", io::printable(slot->second), "' and '", io::printable(input),
                  "' would both be written to '", io::printable(output), "': rename one of them");
    PIXGRAD_CHECK(!input_paths.count(fs::weakly_canonical(output, error)), "'", io::printable(output),
                  "' is one of the inputs: choose an --output folder that does not hold them");
    PIXGRAD_CHECK(overwrite || !fs::exists(fs::symlink_status(output, error)), "'", io::printable(output),
                  "' exists already: choose another --output folder, or --overwrite to replace earlier results");
    outputs.push_back(output);
  }
  return outputs;
}

namespace {

// Refuses a path that exists (a link counts, even a dangling one), unless `overwrite`.
void check_new(const fs::path& path, bool overwrite) {
  std::error_code error;
  PIXGRAD_CHECK(overwrite || !fs::exists(fs::symlink_status(path, error)), "'", io::printable(path.string()),
                "' exists already: choose another --output folder, or --overwrite to replace earlier results");
}

}  // namespace

std::vector<TranslationFiles> translation_files(const std::vector<std::string>& inputs, const std::string& folder,
                                                bool overwrite, bool with_truth) {
  PIXGRAD_CHECK(!folder.empty(), "--output must name a folder");
  // Inputs inside the output folder (in its images/, say) would be replaced by results.
  std::error_code error;
  const fs::path output_folder = fs::weakly_canonical(folder, error);
  std::set<fs::path> input_paths;
  for (const std::string& input : inputs) {
    const fs::path canonical = fs::weakly_canonical(input, error);
    input_paths.insert(canonical);
    const auto [end, unused] = std::mismatch(output_folder.begin(), output_folder.end(), canonical.begin(), canonical.end());
    PIXGRAD_CHECK(end != output_folder.end(), "input '", io::printable(input), "' lies inside --output '",
                  io::printable(folder), "': results there could replace it; choose another --output folder");
  }
  for (const char* page : {"index.html", "metrics.json"}) check_new(fs::path(folder) / page, overwrite);
  std::vector<TranslationFiles> files;
  for (const std::string& generated : translation_outputs(inputs, folder, overwrite)) {
    const std::string name = fs::path(generated).stem().string();
    const fs::path images = fs::path(folder) / "images";
    TranslationFiles entry{generated, (images / (name + "_input.png")).string(), ""};
    if (with_truth) entry.truth = (images / (name + "_truth.png")).string();
    for (const std::string& path : {entry.input, entry.truth}) {
      if (path.empty()) continue;
      PIXGRAD_CHECK(!input_paths.count(fs::weakly_canonical(path, error)), "'", io::printable(path),
                    "' is one of the inputs: choose an --output folder that does not hold them");
      check_new(path, overwrite);
    }
    files.push_back(entry);
  }
  return files;
}

}  // namespace pixgrad::training
