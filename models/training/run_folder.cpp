#include "models/training/run_folder.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.h"
#include "core/file_io.h"

namespace pixgrad::training {

namespace fs = std::filesystem;

namespace {

constexpr const char* kLockName = ".pixgrad.lock";
constexpr const char* kRunFiles[] = {"checkpoint.safetensors", "log.jsonl"};

std::string shown(const std::string& folder) { return io::printable(folder); }

}  // namespace

bool holds_a_run(const std::string& folder) {
  std::error_code error;
  for (const char* name : kRunFiles)
    if (fs::exists(fs::path(folder) / name, error)) return true;
  return false;
}

RunFolder::RunFolder(const std::string& folder, bool continuing, bool overwrite)
    : folder_(folder), lock_path_((fs::path(folder) / kLockName).string()) {
  std::error_code error;
  if (fs::exists(folder, error) && !fs::is_directory(folder, error))
    fail("output folder '", shown(folder), "': exists and is not a folder");
  if (!fs::exists(folder, error)) {
    fs::create_directories(folder, error);
    if (error) fail("output folder '", shown(folder), "': cannot create it: ", error.message());
    created_ = true;
  }
  lock_fd_ = ::open(lock_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) {
    const int open_error = errno;
    if (created_) fs::remove(folder, error);
    fail("output folder '", shown(folder), "': not writable (", std::strerror(open_error), ")");
  }
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    std::string holder;
    std::ifstream(lock_path_) >> holder;
    ::close(lock_fd_);
    lock_fd_ = -1;
    fail("output folder '", shown(folder), "' is in use by another run",
         holder.empty() ? "" : " (process " + io::printable(holder) + ")");
  }
  // Ours now: note who holds it, for the message above.
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(lock_fd_, 0) == 0 && ::write(lock_fd_, pid.data(), pid.size()) < 0) {
    // The lock holds without the note.
  }

  if (!continuing && holds_a_run(folder)) {
    if (!overwrite) {
      fs::remove(lock_path_, error);  // still ours: the folder is left as it was
      ::close(lock_fd_);
      lock_fd_ = -1;
      fail("output folder '", shown(folder), "' holds another run (its checkpoint or log): choose another --output, "
           "--resume its checkpoint, or add --overwrite to replace it");
    }
    replaces_ = true;
  }
}

RunFolder::~RunFolder() {
  if (lock_fd_ < 0) return;
  std::error_code error;
  // The lock file goes with the lock (a folder left as it was has none).
  fs::remove(lock_path_, error);
  ::close(lock_fd_);
  if (created_ && fs::is_empty(folder_, error)) fs::remove(folder_, error);
}

}  // namespace pixgrad::training
