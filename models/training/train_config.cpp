#include "models/training/train_config.h"

#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "models/presets.h"

namespace pixgrad::training {

std::string TrainConfig::effective_schedule() const {
  if (!schedule.empty()) return schedule;
  return preset == "chainer" ? "constant" : "linear";
}

int64_t TrainConfig::input_channels() const { return format == "cmp" ? 12 : 3; }
int64_t TrainConfig::output_channels() const { return 3; }

// The fields that define what is trained — a resumed run must keep them ...
#define PIXGRAD_TRAINING_FIELDS(X)                                                                         \
  X(format) X(direction) X(train_split) X(load_size) X(crop_size) X(no_flip) X(preset) X(ngf) X(ndf)       \
  X(num_downs) X(n_layers) X(discriminator) X(norm) X(no_dropout) X(batch_size) X(epochs) X(decay_epochs) X(schedule)   \
  X(lr) X(beta1) \
  X(lambda_l1) X(seed)
// ... and those that only steer the run, which a resumed run may change.
#define PIXGRAD_RUN_FIELDS(X)                                                                       \
  X(dataset) X(test_split) X(workers) X(max_iterations) X(device) X(conv_impl) X(tf32) X(output) X(log_interval) \
  X(snapshot_interval) X(eval_interval) X(preview_count)
#define PIXGRAD_CONFIG_FIELDS(X) PIXGRAD_TRAINING_FIELDS(X) PIXGRAD_RUN_FIELDS(X)

nlohmann::json to_json(const TrainConfig& config) {
  nlohmann::json json;
#define PIXGRAD_WRITE(field) json[#field] = config.field;
  PIXGRAD_CONFIG_FIELDS(PIXGRAD_WRITE)
#undef PIXGRAD_WRITE
  return json;
}

TrainConfig config_from_json(const nlohmann::json& json) {
  PIXGRAD_CHECK(json.is_object(), "training options: expected a JSON object");
  TrainConfig config;
#define PIXGRAD_READ(field)                                                                        \
  if (json.contains(#field)) {                                                                     \
    try {                                                                                          \
      json.at(#field).get_to(config.field);                                                        \
    } catch (const nlohmann::json::exception&) {                                                   \
      fail("training options: field '" #field "' has the wrong type (", json.at(#field).dump(), ")"); \
    }                                                                                              \
  }
  PIXGRAD_CONFIG_FIELDS(PIXGRAD_READ)
#undef PIXGRAD_READ
  return config;
}

TrainConfig merge_for_resume(const TrainConfig& saved, const TrainConfig& requested,
                             const std::set<std::string>& explicit_fields, const std::string& checkpoint_path) {
  TrainConfig merged = saved;
#define PIXGRAD_KEEP(field)                                                                                   \
  if (explicit_fields.count(#field) && requested.field != saved.field)                                        \
    fail("checkpoint '", checkpoint_path, "': it was trained with --", option_name(#field), " ", to_json(saved)[#field].dump(), \
         ", this run asks for ", to_json(requested)[#field].dump());
  PIXGRAD_TRAINING_FIELDS(PIXGRAD_KEEP)
#undef PIXGRAD_KEEP
#define PIXGRAD_STEER(field) \
  if (explicit_fields.count(#field)) merged.field = requested.field;
  PIXGRAD_RUN_FIELDS(PIXGRAD_STEER)
#undef PIXGRAD_STEER
  return merged;
}

std::string option_name(const std::string& field) {
  std::string name = field;
  for (char& c : name)
    if (c == '_') c = '-';
  return name;
}

void validate(const TrainConfig& c) {
  PIXGRAD_CHECK(c.format == "aligned" || c.format == "cmp", "--format must be aligned or cmp, not '", c.format, "'");
  PIXGRAD_CHECK(c.direction == "AtoB" || c.direction == "BtoA", "--direction must be AtoB or BtoA, not '",
                c.direction, "'");
  models::parse_preset(c.preset);
  models::parse_norm(c.norm);
  PIXGRAD_CHECK(c.discriminator == "patch" || c.discriminator == "pixel", "--discriminator must be patch or pixel, not '",
                c.discriminator, "'");
  PIXGRAD_CHECK(c.discriminator == "patch" || c.preset == "paper", "--discriminator pixel needs --preset paper");
  const std::string schedule = c.effective_schedule();
  PIXGRAD_CHECK(schedule == "linear" || schedule == "constant", "--schedule must be linear or constant, not '",
                schedule, "'");
  PIXGRAD_CHECK(c.batch_size >= 1, "--batch-size must be >= 1");
  PIXGRAD_CHECK(c.epochs >= 1, "--epochs must be >= 1");
  PIXGRAD_CHECK(c.decay_epochs <= c.epochs, "--decay-epochs (", c.decay_epochs, ") exceeds --epochs (", c.epochs, ")");
  PIXGRAD_CHECK(c.crop_size >= 1 && c.load_size >= c.crop_size, "--crop-size (", c.crop_size,
                ") must be >= 1 and <= --load-size (", c.load_size, ")");
  PIXGRAD_CHECK(c.lr > 0 && c.beta1 >= 0 && c.beta1 < 1, "--lr must be > 0 and --beta1 in [0, 1)");
  PIXGRAD_CHECK(c.ngf >= 1 && c.ngf <= 1024 && c.ndf >= 2 && c.ndf <= 1024, "--ngf must be in 1..1024 and --ndf in 2..1024 (got ",
                c.ngf, " and ", c.ndf, ")");
  PIXGRAD_CHECK(c.num_downs >= 0 && c.num_downs <= 12 && (int64_t{1} << c.num_downs) <= c.crop_size,
                "--num-downs ", c.num_downs, " must be in 0..12 with 2^num_downs <= --crop-size (", c.crop_size, ")");
  PIXGRAD_CHECK(c.n_layers >= 1 && c.n_layers <= 8, "--n-layers must be in 1..8, got ", c.n_layers);
  PIXGRAD_CHECK(c.crop_size <= 8192, "--crop-size ", c.crop_size, " exceeds 8192");
  PIXGRAD_CHECK(c.log_interval >= 1 && c.snapshot_interval >= 1 && c.eval_interval >= 0,
                "--log-interval and --snapshot-interval must be >= 1, --eval-interval >= 0");
  PIXGRAD_CHECK(c.workers >= 1 && c.preview_count >= 0, "--workers must be >= 1 and --preview-count >= 0");
}

}  // namespace pixgrad::training
