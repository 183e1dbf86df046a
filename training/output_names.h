// Where pix2pix_translate writes each input's result, decided before any
// image is translated: "<stem>.png" in the output folder, or
// "<stem>_<ext>.png" for inputs whose stems collide (photo.jpg and
// photo.png), so that no result replaces another. It refuses, in one line,
// an output folder that holds inputs (results there would be read as inputs
// next time), an output that would replace one of the inputs (always), and
// an output that exists already unless `overwrite`.
#pragma once

#include <string>
#include <vector>

namespace pixgrad::training {

std::vector<std::string> translation_outputs(const std::vector<std::string>& inputs, const std::string& folder,
                                             bool overwrite);

// Everything one input's translation writes: the result "<name>.png" as
// above, and for the results page "images/<name>_input.png" and, with
// `with_truth`, "images/<name>_truth.png". Each is refused as above (and
// so are the folder's index.html and metrics.json) if it exists already,
// unless `overwrite`.
struct TranslationFiles {
  std::string generated, input, truth;
};
std::vector<TranslationFiles> translation_files(const std::vector<std::string>& inputs, const std::string& folder,
                                                bool overwrite, bool with_truth);

}  // namespace pixgrad::training
