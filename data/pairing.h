// Making aligned training pairs (pix2pix's A|B layout, docs/data.md): two
// images side by side in one file, as the pix2pix reference's
// combine_A_and_B does, or a photo beside line art drawn from it
// (data/line_art.h). Everything is planned and checked before a file is
// written, and every failure is one pixgrad::Error line naming the file.
// pix2pix_prepare (apps/) is the command line; see docs/prepare.md.
#pragma once

#include <string>
#include <vector>

#include <pixgrad/data/image.h>
#include <pixgrad/data/line_art.h>

namespace pixgrad::data {

// `left` and `right` in one image, left | right. They must have the same
// height and channel count (widen_channels makes them agree).
Image side_by_side(const Image& left, const Image& right);

// `image` with `channels` channels, which must be at least its own (except
// grey + alpha -> RGB, which drops the alpha): grey is replicated into
// colour, a missing alpha is opaque.
Image widen_channels(const Image& image, int channels);

// One output file and what it is made from (`b` is empty for line art).
struct PairTask {
  std::string a;
  std::string b;
  std::string output;
};

// combine_A_and_B: for each image of folder_a (sorted), the image of
// folder_b with the same stem, to output/<stem>.png. When folder_a holds no
// images but sub-folders (train/, val/, test/ ...), each sub-folder is paired
// with the one of the same name in folder_b and written to output/<name>/.
// Refuses, listing how many and the first few: A images without a partner
// (then nothing is written), stems that two files share, an output folder
// inside an input folder, an output that would replace an input, and one
// that exists already unless `overwrite`.
std::vector<PairTask> plan_combine(const std::string& folder_a, const std::string& folder_b,
                                   const std::string& output, bool overwrite);
// A | B from two files: the same width and height required; the one with
// fewer channels is widened to the other's (grey + RGB -> RGB).
Image combine_pair(const std::string& a, const std::string& b);
// Plans, loads and checks every pair (nothing is written if one fails), then
// writes them, each atomically. Returns the tasks written.
std::vector<PairTask> combine_folders(const std::string& folder_a, const std::string& folder_b,
                                      const std::string& output, bool overwrite);

enum class LineArtMethod { Xdog, Canny };

struct LineArtPairOptions {
  int size = 256;  // both sides resized to size (bilinear, antialiased); 0 keeps the photo's size
  LineArtMethod method = LineArtMethod::Xdog;
  XdogOptions xdog;
  CannyOptions canny;
};
// line art | photo, both RGB, the line art drawn on the (resized) photo.
Image line_art_pair(const Image& photo, const LineArtPairOptions& options = {});

// Test share when none is asked for: a tenth of the photos, rounded.
constexpr int kDefaultTestPercent = 10;
// Photos of `input` (those whose extension is one of `extensions`, any case,
// without the dot; empty: jpg, jpeg and png) sorted by name: the last
// `test_count` to output/test/<stem>.png, the others to output/train/
// (test_count < 0: kDefaultTestPercent of them). Refuses the same conflicts
// as plan_combine.
std::vector<PairTask> plan_line_art(const std::string& input, const std::vector<std::string>& extensions,
                                    const std::string& output, int test_count, bool overwrite);

}  // namespace pixgrad::data
