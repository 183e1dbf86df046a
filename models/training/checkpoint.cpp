#include "models/training/checkpoint.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/safetensors.h"

namespace pixgrad::training {

namespace {

constexpr const char* kFormatKey = "pixgrad.format";
constexpr const char* kFormat = "pix2pix-checkpoint-1";

nlohmann::json state_to_json(const TrainState& s) {
  return {{"iteration", s.iteration}, {"epoch", s.epoch},           {"batches_done", s.batches_done},
          {"rng_seed", s.rng_seed},   {"rng_offset", s.rng_offset}};
}

TrainState state_from_json(const nlohmann::json& json) {
  TrainState s;
  json.at("iteration").get_to(s.iteration);
  json.at("epoch").get_to(s.epoch);
  json.at("batches_done").get_to(s.batches_done);
  json.at("rng_seed").get_to(s.rng_seed);
  json.at("rng_offset").get_to(s.rng_offset);
  return s;
}

}  // namespace

void save_checkpoint(const std::string& path, const std::map<std::string, Tensor>& tensors, const TrainConfig& config,
                     const TrainState& state) {
  safetensors::save(path, tensors,
                    {{kFormatKey, kFormat}, {"config", to_json(config).dump()}, {"state", state_to_json(state).dump()}});
}

Checkpoint load_checkpoint(const std::string& path) {
  safetensors::File file = safetensors::load(path);
  const auto format = file.metadata.find(kFormatKey);
  PIXGRAD_CHECK(format != file.metadata.end() && format->second == kFormat, "checkpoint '", path,
                "': not a pixgrad pix2pix checkpoint (metadata '", kFormatKey, "' is ",
                format == file.metadata.end() ? "missing" : "'" + format->second + "'", ")");
  Checkpoint checkpoint;
  try {
    checkpoint.config = config_from_json(nlohmann::json::parse(file.metadata.at("config")));
    checkpoint.state = state_from_json(nlohmann::json::parse(file.metadata.at("state")));
  } catch (const std::exception& error) {
    fail("checkpoint '", path, "': bad training metadata (", error.what(), ")");
  }
  checkpoint.tensors = std::move(file.tensors);
  return checkpoint;
}

}  // namespace pixgrad::training
