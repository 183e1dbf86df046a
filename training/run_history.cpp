#include <pixgrad/training/run_history.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>

namespace pixgrad::training {

namespace {

namespace fs = std::filesystem;

std::string numbered(const char* prefix, int width, int64_t number, const char* suffix) {
  char digits[32];
  std::snprintf(digits, sizeof digits, "%0*lld", width, static_cast<long long>(number));
  return prefix + std::string(digits) + suffix;
}

// The number in "<prefix><digits><suffix>" as numbered() writes it (zero-padded
// to `width`), or -1 for any other name.
int64_t number_in(const std::string& name, const std::string& prefix, int width, const std::string& suffix) {
  if (name.size() <= prefix.size() + suffix.size() || name.compare(0, prefix.size(), prefix) != 0 ||
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
    return -1;
  const std::string digits = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  if (digits.size() > 15 || !std::all_of(digits.begin(), digits.end(), [](unsigned char c) { return std::isdigit(c); }))
    return -1;
  const int64_t number = std::stoll(digits);
  return numbered(prefix.c_str(), width, number, suffix.c_str()) == name ? number : -1;
}

std::vector<HistoryFile> list_numbered(const std::string& folder, const std::string& prefix, int width,
                                       const std::string& suffix) {
  std::vector<HistoryFile> files;
  std::error_code error;
  if (!fs::is_directory(folder, error)) return files;
  for (const fs::directory_entry& entry : fs::directory_iterator(folder, error)) {
    if (!entry.is_regular_file(error)) continue;
    const int64_t number = number_in(entry.path().filename().string(), prefix, width, suffix);
    if (number >= 0) files.push_back({number, entry.path().string()});
  }
  std::sort(files.begin(), files.end(), [](const HistoryFile& a, const HistoryFile& b) { return a.number < b.number; });
  return files;
}

}  // namespace

std::string history_checkpoint_name(int64_t epoch) { return numbered("epoch_", 4, epoch, ".safetensors"); }
std::string preview_name(int64_t iteration) { return numbered("iter_", 8, iteration, ".png"); }
bool is_history_checkpoint_name(const std::string& name) { return number_in(name, "epoch_", 4, ".safetensors") >= 0; }
bool is_preview_name(const std::string& name) { return number_in(name, "iter_", 8, ".png") >= 0; }

std::vector<HistoryFile> list_history_checkpoints(const std::string& folder) {
  return list_numbered(folder, "epoch_", 4, ".safetensors");
}

std::vector<HistoryFile> list_previews(const std::string& folder) { return list_numbered(folder, "iter_", 8, ".png"); }

std::vector<std::string> prune_history_checkpoints(const std::string& folder, int keep, int64_t through) {
  std::vector<std::string> removed;
  if (keep <= 0) return removed;
  std::vector<HistoryFile> files = list_history_checkpoints(folder);
  files.erase(std::remove_if(files.begin(), files.end(), [&](const HistoryFile& f) { return f.number > through; }),
              files.end());
  for (size_t i = 0; i + static_cast<size_t>(keep) < files.size(); ++i) {
    std::error_code error;
    if (fs::remove(files[i].path, error)) removed.push_back(files[i].path);
  }
  return removed;
}

}  // namespace pixgrad::training
