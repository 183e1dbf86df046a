// The output folder of a training run, claimed for as long as the run lasts:
//   - created if missing (and removed again if the run leaves it empty);
//   - locked (flock on the folder itself): a second run on the same folder
//     is refused, and the lock goes with the process however it ends;
//   - refused if it holds another run's files (run_files_in), unless this run
//     continues that run (a resume from the folder's own checkpoint.safetensors,
//     in a folder that holds the run's log.jsonl or nothing else of a run)
//     or the user said --overwrite.
// Every check happens before anything is written.
#pragma once

#include <string>

namespace pixgrad::training {

class RunFolder {
 public:
  RunFolder(const std::string& folder, bool continuing, bool overwrite);
  ~RunFolder();
  RunFolder(const RunFolder&) = delete;
  RunFolder& operator=(const RunFolder&) = delete;

  const std::string& path() const { return folder_; }
  // Releases the lock now (and removes the folder if this claim created it
  // and it is still empty); the destructor does the same.
  void release();
  // True when the folder held another run's files (or files named as a
  // run's) and --overwrite allowed it.
  bool replaces_a_run() const { return replaces_; }

 private:
  std::string folder_;
  int lock_fd_ = -1;
  bool created_ = false;
  bool replaces_ = false;
};

// Files of a run that mark a folder as taken (checkpoint.safetensors,
// checkpoint.diverged.safetensors, log.jsonl, options.json, index.html,
// preview.png, loss.png, previews/, checkpoints/): those found, joined by
// " and " ("" if none).
std::string run_files_in(const std::string& folder);
bool holds_a_run(const std::string& folder);

}  // namespace pixgrad::training
