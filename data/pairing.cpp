// Aligned pairs: side by side images, the plans of pix2pix_prepare's two
// subcommands and the checks that keep them from damaging a dataset.
#include <pixgrad/data/pairing.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include <pixgrad/core/error.h>
#include <pixgrad/core/file_io.h>

namespace pixgrad::data {

namespace fs = std::filesystem;

namespace {

// How many names a "N files ...: a, b, c and N - 3 more" message lists.
constexpr size_t kNamesShown = 3;

std::string in_quotes(const std::string& path) { return "'" + io::printable(path) + "'"; }

// "'a', 'b', 'c' and 4 more": the first few of `names`, for one-line errors.
std::string first_names(const std::vector<std::string>& names) {
  std::ostringstream out;
  for (size_t i = 0; i < names.size() && i < kNamesShown; ++i) out << (i ? ", " : "") << in_quotes(names[i]);
  if (names.size() > kNamesShown) out << " and " << names.size() - kNamesShown << " more";
  return out.str();
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

std::string stem(const std::string& path) { return fs::path(path).stem().string(); }

struct FolderListing {
  std::vector<std::string> images;      // sorted by full name, as list_image_files
  std::vector<std::string> subfolders;  // names only, sorted; hidden ones left out
};

// The images (by extension, any case) and sub-folders directly in `folder`.
FolderListing list_folder(const std::string& folder, const char* role, const std::vector<std::string>& extensions) {
  std::error_code error;
  PIXGRAD_CHECK(fs::exists(folder, error), role, " ", in_quotes(folder), ": no such folder");
  PIXGRAD_CHECK(fs::is_directory(folder, error), role, " ", in_quotes(folder), ": not a folder");
  FolderListing listing;
  for (const fs::directory_entry& entry : fs::directory_iterator(folder, error)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory(error)) {
      if (name[0] != '.') listing.subfolders.push_back(name);
      continue;
    }
    std::string extension = lower(entry.path().extension().string());
    if (!extension.empty()) extension.erase(0, 1);
    if (entry.is_regular_file(error) && std::count(extensions.begin(), extensions.end(), extension))
      listing.images.push_back(entry.path().string());
  }
  PIXGRAD_CHECK(!error, role, " ", in_quotes(folder), ": cannot list it: ", error.message());
  std::sort(listing.images.begin(), listing.images.end());
  std::sort(listing.subfolders.begin(), listing.subfolders.end());
  return listing;
}

const std::vector<std::string> kImageExtensions = {"jpg", "jpeg", "png"};

fs::path canonical_or_as_is(const fs::path& path) {
  std::error_code error;
  const fs::path resolved = fs::weakly_canonical(path, error);
  return error ? path.lexically_normal() : resolved;
}

// Whether `inner` is `outer` or lies below it (after resolving links).
bool is_within(const fs::path& inner, const fs::path& outer) {
  const fs::path in = canonical_or_as_is(inner), out = canonical_or_as_is(outer);
  const auto [end, unused] = std::mismatch(out.begin(), out.end(), in.begin(), in.end());
  return end == out.end();
}

// The checks both subcommands make once every output is named: no output
// folder inside an input folder (results there would be read as inputs by
// the next run), no two tasks writing the same file, no output replacing an
// input, and no existing output unless `overwrite`.
// `collision_hint` ends the message for two inputs sharing a stem.
void check_outputs(const std::vector<PairTask>& tasks, const std::string& output,
                   const std::vector<std::string>& input_folders, bool overwrite, const char* collision_hint) {
  for (const std::string& folder : input_folders)
    PIXGRAD_CHECK(!is_within(output, folder), "--output ", in_quotes(output), " is inside the input folder ",
                  in_quotes(folder), ": choose a folder outside the inputs");
  std::set<fs::path> inputs;
  for (const PairTask& task : tasks)
    for (const std::string* input : {&task.a, &task.b})
      if (!input->empty()) inputs.insert(canonical_or_as_is(*input));
  std::map<std::string, const PairTask*> taken;
  std::vector<std::string> existing;
  for (const PairTask& task : tasks) {
    const auto [slot, inserted] = taken.emplace(task.output, &task);
    PIXGRAD_CHECK(inserted, in_quotes(slot->second->a), " and ", in_quotes(task.a), " would both be written to ",
                  in_quotes(task.output), " (the same file stem): ", collision_hint);
    PIXGRAD_CHECK(!inputs.count(canonical_or_as_is(task.output)), in_quotes(task.output),
                  " is one of the inputs: choose another --output folder");
    std::error_code error;
    if (fs::exists(fs::symlink_status(task.output, error))) existing.push_back(task.output);
  }
  PIXGRAD_CHECK(overwrite || existing.empty(), existing.size(), " output file(s) exist already: ", first_names(existing),
                "; choose another --output folder, or --overwrite to replace them");
}

// A images without a partner, and the B folder searched for the first.
struct Missing {
  std::vector<std::string> files;
  std::string first_searched;
};

// Pairs every image of folder_a with its partner in folder_b; A images
// without one are added to `missing`.
void pair_folder(const std::string& folder_a, const std::string& folder_b, const fs::path& output,
                 std::vector<PairTask>& tasks, Missing& missing) {
  const FolderListing a = list_folder(folder_a, "A folder", kImageExtensions);
  const FolderListing b = list_folder(folder_b, "B folder", kImageExtensions);
  std::map<std::string, std::vector<std::string>> partners;
  for (const std::string& file : b.images) partners[stem(file)].push_back(file);
  for (const std::string& file : a.images) {
    const auto found = partners.find(stem(file));
    if (found == partners.end()) {
      if (missing.files.empty()) missing.first_searched = folder_b;
      missing.files.push_back(file);
      continue;
    }
    PIXGRAD_CHECK(found->second.size() == 1, in_quotes(file), " has more than one partner in ", in_quotes(folder_b), ": ",
                  first_names(found->second), "; keep only one");
    tasks.push_back({file, found->second[0], (output / (stem(file) + ".png")).string()});
  }
}

std::string size_text(const Image& image) {
  return std::to_string(image.width) + "x" + std::to_string(image.height);
}

}  // namespace

Image side_by_side(const Image& left, const Image& right) {
  PIXGRAD_CHECK(left.height == right.height && left.channels == right.channels && left.width > 0 &&
                    right.width > 0 && left.height > 0,
                "side_by_side: the images must be non-empty with the same height and channels, got ",
                size_text(left), "x", left.channels, " and ", size_text(right), "x", right.channels);
  // The aligned loader reads at most kMaxImageSide wide: a wider pair could not be trained on.
  PIXGRAD_CHECK(left.width + right.width <= kMaxImageSide, "side_by_side: the pair would be ",
                left.width + right.width, " pixels wide, more than ", kMaxImageSide, " (each half at most ",
                kMaxImageSide / 2, ")");
  Image out(left.width + right.width, left.height, left.channels);
  const size_t left_row = static_cast<size_t>(left.width) * left.channels;
  const size_t right_row = static_cast<size_t>(right.width) * right.channels;
  for (int y = 0; y < left.height; ++y) {
    uint8_t* row = out.pixels.data() + y * (left_row + right_row);
    std::memcpy(row, left.pixels.data() + y * left_row, left_row);
    std::memcpy(row + left_row, right.pixels.data() + y * right_row, right_row);
  }
  return out;
}

Image widen_channels(const Image& image, int channels) {
  const bool drops_alpha = image.channels == 2 && channels == 3;
  PIXGRAD_CHECK(channels >= 1 && channels <= 4 && image.channels >= 1 && (image.channels <= channels || drops_alpha),
                "widen_channels: cannot turn ", image.channels, " channel(s) into ", channels);
  if (image.channels == channels) return image;
  Image out(image.width, image.height, channels);
  const bool grey = image.channels <= 2;
  const bool has_alpha = image.channels == 2 || image.channels == 4;
  for (size_t p = 0; p < static_cast<size_t>(image.width) * image.height; ++p) {
    const uint8_t* in = image.pixels.data() + p * image.channels;
    uint8_t* to = out.pixels.data() + p * channels;
    // Every layout read as (r, g, b, a), then written in the wider layout.
    const uint8_t rgba[4] = {in[0], grey ? in[0] : in[1], grey ? in[0] : in[2],
                             has_alpha ? in[image.channels - 1] : uint8_t{255}};
    if (channels == 2) {
      to[0] = rgba[0];
      to[1] = rgba[3];
    } else {
      std::copy(rgba, rgba + channels, to);
    }
  }
  return out;
}

std::vector<PairTask> plan_combine(const std::string& folder_a, const std::string& folder_b,
                                   const std::string& output, bool overwrite) {
  std::error_code same_error;
  PIXGRAD_CHECK(!std::filesystem::equivalent(folder_a, folder_b, same_error), "--a ", in_quotes(folder_a), " and --b ",
                in_quotes(folder_b), " are the same folder: every image would be paired with itself");
  const FolderListing a = list_folder(folder_a, "A folder", kImageExtensions);
  std::vector<PairTask> tasks;
  Missing missing;
  if (!a.images.empty()) {
    pair_folder(folder_a, folder_b, output, tasks, missing);
  } else {
    PIXGRAD_CHECK(!a.subfolders.empty(), "A folder ", in_quotes(folder_a),
                  ": no .jpg/.jpeg/.png images and no sub-folders (train/, test/ ...) in it");
    const FolderListing b = list_folder(folder_b, "B folder", kImageExtensions);
    std::vector<std::string> unmatched;
    for (const std::string& split : a.subfolders)
      if (!std::count(b.subfolders.begin(), b.subfolders.end(), split)) unmatched.push_back(split);
    PIXGRAD_CHECK(unmatched.empty(), "B folder ", in_quotes(folder_b), " lacks the sub-folder(s) ", first_names(unmatched),
                  " that A folder ", in_quotes(folder_a), " has");
    for (const std::string& split : a.subfolders)
      pair_folder((fs::path(folder_a) / split).string(), (fs::path(folder_b) / split).string(),
                  fs::path(output) / split, tasks, missing);
  }
  PIXGRAD_CHECK(missing.files.empty(), missing.files.size(), " A image(s) have no B image with the same stem: ",
                first_names(missing.files), " (the first looked for in ", in_quotes(missing.first_searched),
                "); nothing was written");
  PIXGRAD_CHECK(!tasks.empty(), "A folder ", in_quotes(folder_a), ": no images in its sub-folders");
  check_outputs(tasks, output, {folder_a, folder_b}, overwrite, "rename one of them");
  return tasks;
}

Image combine_pair(const std::string& a, const std::string& b) {
  const Image left = load_image(a);
  const Image right = load_image(b);
  // The aligned dataset cuts each file at the middle, so the halves must match exactly.
  PIXGRAD_CHECK(left.width == right.width && left.height == right.height, in_quotes(a), " is ", size_text(left),
                " but its partner ", in_quotes(b), " is ", size_text(right), ": A and B must have the same size");
  PIXGRAD_CHECK(2 * left.width <= kMaxImageSide, in_quotes(a), " and ", in_quotes(b), " are ", size_text(left),
                ": the pair would be ", 2 * left.width, " pixels wide, more than ", kMaxImageSide,
                "; resize them to at most ", kMaxImageSide / 2, " wide first");
  const int channels = std::max(left.channels, right.channels);
  return side_by_side(widen_channels(left, channels), widen_channels(right, channels));
}

std::vector<PairTask> combine_folders(const std::string& folder_a, const std::string& folder_b,
                                      const std::string& output, bool overwrite) {
  const std::vector<PairTask> tasks = plan_combine(folder_a, folder_b, output, overwrite);
  // Every pair is decoded once before anything is written, so a bad pair
  // leaves no half-made dataset behind; decoding twice costs little.
  std::vector<std::string> failures;
  for (const PairTask& task : tasks) try {
      combine_pair(task.a, task.b);
    } catch (const Error& error) {
      failures.push_back(error.what());
    }
  PIXGRAD_CHECK(failures.empty(), failures.size(), " pair(s) cannot be combined, so nothing was written; the first: ",
                failures.front());
  for (const PairTask& task : tasks) {
    std::error_code error;
    fs::create_directories(fs::path(task.output).parent_path(), error);
    PIXGRAD_CHECK(!error, "output folder ", in_quotes(fs::path(task.output).parent_path().string()),
                  ": cannot create it: ", error.message());
    save_png(task.output, combine_pair(task.a, task.b));
  }
  return tasks;
}

Image line_art_pair(const Image& photo, const LineArtPairOptions& options) {
  // The pair is twice as wide as its photo, and no wider than kMaxImageSide.
  PIXGRAD_CHECK(options.size >= 0 && options.size <= kMaxImageSide / 2, "line_art_pair: size must be in [0, ",
                kMaxImageSide / 2, "], got ", options.size);
  Image rgb = to_rgb(photo);
  if (options.size > 0) rgb = resize_bilinear(rgb, options.size, options.size);
  PIXGRAD_CHECK(2 * rgb.width <= kMaxImageSide, "the photo is ", size_text(rgb), ": its pair would be ",
                2 * rgb.width, " pixels wide, more than ", kMaxImageSide, "; give --size (e.g. --size 256)");
  const Image lines = options.method == LineArtMethod::Xdog ? xdog_edges(rgb, options.xdog)
                                                            : canny_edges(rgb, options.canny);
  return side_by_side(widen_channels(lines, 3), rgb);
}

std::vector<PairTask> plan_line_art(const std::string& input, const std::vector<std::string>& extensions,
                                    const std::string& output, int test_count, bool overwrite) {
  std::vector<std::string> wanted;
  for (std::string extension : extensions) {
    if (!extension.empty() && extension[0] == '.') extension.erase(0, 1);
    PIXGRAD_CHECK(!extension.empty(), "--extension: an empty extension");
    wanted.push_back(lower(extension));
  }
  if (wanted.empty()) wanted = kImageExtensions;
  const std::vector<std::string> photos = list_folder(input, "input", wanted).images;
  std::string listed;
  for (const std::string& extension : wanted) listed += (listed.empty() ? "." : "/.") + extension;
  PIXGRAD_CHECK(!photos.empty(), "input ", in_quotes(input), ": no ", listed, " files in this folder");
  const int count = static_cast<int>(photos.size());
  if (test_count < 0) test_count = static_cast<int>(std::lround(count * kDefaultTestPercent / 100.0));
  PIXGRAD_CHECK(test_count <= count, "--test-count ", test_count, " is more than the ", count, " photos in ",
                in_quotes(input));
  std::vector<PairTask> tasks;
  for (int i = 0; i < count; ++i) {
    const char* split = i >= count - test_count ? "test" : "train";
    tasks.push_back({photos[i], "", (fs::path(output) / split / (stem(photos[i]) + ".png")).string()});
  }
  check_outputs(tasks, output, {input}, overwrite, "take one kind with --extension, or rename one of them");
  return tasks;
}

}  // namespace pixgrad::data
