#include <pixgrad/training/run_folder.h>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <pixgrad/core/error.h>
#include <pixgrad/core/file_io.h>

namespace pixgrad::training {

namespace fs = std::filesystem;

namespace {

// What a run (or a results page of pix2pix_translate) leaves: any of them marks the folder as taken.
constexpr const char* kRunFiles[] = {"checkpoint.safetensors", "checkpoint.diverged.safetensors", "log.jsonl",
                                     "options.json", "index.html", "preview.png", "loss.png", "previews",
                                     "checkpoints"};
constexpr const char kCheckpoint[] = "checkpoint.safetensors";
constexpr const char kLog[] = "log.jsonl";

std::string shown(const std::string& folder) { return io::printable(folder); }

std::vector<std::string> run_files_found(const std::string& folder) {
  std::error_code error;
  std::vector<std::string> found;
  for (const char* name : kRunFiles)
    if (fs::exists(fs::symlink_status(fs::path(folder) / name, error))) found.emplace_back(name);
  return found;
}

std::string joined(const std::vector<std::string>& names) {
  std::string text;
  for (const std::string& name : names) text += (text.empty() ? "" : " and ") + name;
  return text;
}

}  // namespace

std::string run_files_in(const std::string& folder) { return joined(run_files_found(folder)); }

bool holds_a_run(const std::string& folder) { return !run_files_in(folder).empty(); }

RunFolder::RunFolder(const std::string& folder, bool continuing, bool overwrite) : folder_(folder) {
  std::error_code error;
  if (fs::exists(fs::symlink_status(folder, error)) && !fs::is_directory(folder, error))
    fail("output folder '", shown(folder), "': exists and is not a folder");
  if (!fs::exists(folder, error)) {
    fs::create_directories(folder, error);
    if (error) fail("output folder '", shown(folder), "': cannot create it: ", error.message());
    created_ = true;
  }
  // The folder itself is locked: no lock file to be a link, to be left
  // behind, or to be unlinked while another run opens it.
  lock_fd_ = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (lock_fd_ < 0) {
    const int open_error = errno;
    release();
    fail("output folder '", shown(folder), "': cannot open it: ", std::strerror(open_error));
  }
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(lock_fd_);
    lock_fd_ = -1;
    fail("output folder '", shown(folder), "' is in use by another run (which holds its lock)");
  }
  if (::access(folder.c_str(), W_OK) != 0) {
    const int access_error = errno;
    release();
    fail("output folder '", shown(folder), "': not writable (", std::strerror(access_error), ")");
  }
  const std::vector<std::string> found = run_files_found(folder);
  if (continuing) {
    // The run's own folder holds its log from its first step on; a checkpoint
    // copied alone into a folder brings nothing else. Files of a run's names
    // without a log are a user's, among which the checkpoint was put.
    std::vector<std::string> others;
    for (const std::string& name : found)
      if (name != kCheckpoint) others.push_back(name);
    std::error_code error;
    if (others.empty() || fs::is_regular_file(fs::symlink_status(fs::path(folder) / kLog, error))) return;
    if (!overwrite) {
      release();
      fail("output folder '", shown(folder), "' holds ", joined(others), " beside the checkpoint but no run's ", kLog,
           ": it is not that run's folder; give --output (a new folder) to resume it there, or add --overwrite to "
           "replace those files");
    }
    replaces_ = true;
    return;
  }
  if (!found.empty()) {
    if (!overwrite) {
      release();
      const bool has_checkpoint = std::find(found.begin(), found.end(), kCheckpoint) != found.end();
      fail("output folder '", shown(folder), "' holds another run, or files named as a run's (", joined(found),
           "): choose another --output, ", has_checkpoint ? "--resume its checkpoint, " : "",
           "or add --overwrite to replace them");
    }
    replaces_ = true;
  }
}

void RunFolder::release() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // closing the last descriptor releases the lock
  lock_fd_ = -1;
  std::error_code error;
  if (created_ && fs::is_empty(folder_, error)) fs::remove(folder_, error);
  created_ = false;
}

RunFolder::~RunFolder() { release(); }

}  // namespace pixgrad::training
