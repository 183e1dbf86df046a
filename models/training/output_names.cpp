#include "models/training/output_names.h"

#include <filesystem>
#include <map>
#include <set>

#include "core/error.h"
#include "core/file_io.h"

namespace pixgrad::training {

namespace fs = std::filesystem;

std::vector<std::string> translation_outputs(const std::vector<std::string>& inputs, const std::string& folder,
                                             bool overwrite) {
  std::map<std::string, int> stems;
  for (const std::string& input : inputs) ++stems[fs::path(input).stem().string()];

  std::set<fs::path> input_paths;
  std::error_code error;
  for (const std::string& input : inputs) input_paths.insert(fs::weakly_canonical(input, error));

  std::vector<std::string> outputs;
  std::set<std::string> taken;
  for (const std::string& input : inputs) {
    const fs::path path(input);
    std::string name = path.stem().string();
    if (stems[name] > 1) {
      std::string extension = path.extension().string();
      if (!extension.empty()) extension.erase(0, 1);
      name += "_" + extension;
    }
    const std::string output = (fs::path(folder) / (name + ".png")).string();
    PIXGRAD_CHECK(taken.insert(output).second, "inputs '", io::printable(input), "' and another would both be written to '",
                  io::printable(output), "': rename one of them");
    PIXGRAD_CHECK(!input_paths.count(fs::weakly_canonical(output, error)), "'", io::printable(output),
                  "' is one of the inputs: choose an --output folder that does not hold them");
    PIXGRAD_CHECK(overwrite || !fs::exists(output, error), "'", io::printable(output),
                  "' exists already: choose another --output folder, or --overwrite to replace earlier results");
    outputs.push_back(output);
  }
  return outputs;
}

}  // namespace pixgrad::training
