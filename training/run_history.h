// What a run keeps besides its rolling latest checkpoint: the generator
// every --save-epoch-freq epochs (checkpoints/epoch_NNNN.safetensors, the
// newest --keep-checkpoints of them), and the preview grid of every
// snapshot (previews/iter_NNNNNNNN.png). Only files named this way are ever
// listed or removed, so nothing else a user put there is touched.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pixgrad::training {

// "epoch_0005.safetensors", "iter_00001000.png".
std::string history_checkpoint_name(int64_t epoch);
std::string preview_name(int64_t iteration);
// Whether `name` is one of those names.
bool is_history_checkpoint_name(const std::string& name);
bool is_preview_name(const std::string& name);

struct HistoryFile {
  int64_t number = 0;  // the epoch or iteration in the name
  std::string path;
};
// Files in `folder` named as history checkpoints / previews, by number; a
// missing folder holds none.
std::vector<HistoryFile> list_history_checkpoints(const std::string& folder);
std::vector<HistoryFile> list_previews(const std::string& folder);
// Removes all but the `keep` newest history checkpoints up to epoch
// `through` in `folder` (0 keeps them all) and returns the paths removed.
// Later ones (from a branch of the run that a resume from an earlier
// checkpoint superseded) are neither counted nor removed: the run replaces
// them as it reaches those epochs.
std::vector<std::string> prune_history_checkpoints(const std::string& folder, int keep, int64_t through);

}  // namespace pixgrad::training
