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

}  // namespace pixgrad::training
