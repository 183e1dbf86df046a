#include <pixgrad/training/train_config.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <type_traits>

#include <pixgrad/core/error.h>
#include <pixgrad/core/file_io.h>
#include <pixgrad/data/datasets.h>
#include <pixgrad/kernels/conv_settings.h>
#include <pixgrad/models/gan.h>
#include <pixgrad/models/presets.h>

namespace pixgrad::training {

std::string TrainConfig::effective_schedule() const {
  if (!schedule.empty()) return schedule;
  return preset == "chainer" ? "constant" : "linear";
}

int64_t TrainConfig::input_channels() const {
  if (input_nc > 0) return input_nc;
  return format == "cmp" ? 12 : 3;
}
int64_t TrainConfig::output_channels() const { return output_nc; }

// The fields that define what is trained — a resumed run must keep them ...
#define PIXGRAD_TRAINING_FIELDS(X)                                                                       \
  X(format) X(direction) X(train_split) X(preprocess) X(load_size) X(crop_size) X(no_flip) X(input_nc)   \
  X(output_nc) X(preset) X(ngf) X(ndf) X(num_downs) X(n_layers) X(discriminator) X(norm) X(no_dropout) \
  X(gan_mode) X(sync_bn) X(batch_size) X(world_size) X(schedule) X(lr) X(beta1) X(lambda_l1) X(seed) X(init_from)
// ... and those that only steer the run, which a resumed run may change
// (a longer run, as the reference's --epoch_count continues one, moves the
// linear decay with it: see decay_epochs).
#define PIXGRAD_RUN_FIELDS(X)                                                                       \
  X(dataset) X(test_split) X(workers) X(epochs) X(decay_epochs) X(max_iterations) X(device) X(conv_impl) \
  X(tf32) X(precision) X(dist_timeout) X(output) X(log_interval) X(snapshot_interval) X(eval_interval) X(preview_count)              \
  X(save_epoch_freq) X(keep_checkpoints) X(cuda_graph)
#define PIXGRAD_CONFIG_FIELDS(X) PIXGRAD_TRAINING_FIELDS(X) PIXGRAD_RUN_FIELDS(X)

nlohmann::json to_json(const TrainConfig& config) {
  nlohmann::json json;
#define PIXGRAD_WRITE(field) json[#field] = config.field;
  PIXGRAD_CONFIG_FIELDS(PIXGRAD_WRITE)
#undef PIXGRAD_WRITE
  return json;
}

namespace {

// Reading one field from untrusted JSON: the JSON type must match, integers
// must fit the field's type (no silent wrap-around), floating values must be
// finite and strings short and free of control characters.
[[noreturn]] void bad_field(const char* field, const nlohmann::json& value, const char* expected) {
  // Only a scalar is shown: dumping a deeply nested value would recurse as deep.
  std::string shown = value.is_structured() ? std::string("an ") + value.type_name()
                                            : value.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
  if (shown.size() > 60) shown = shown.substr(0, 57) + "...";
  fail("training options: field '", field, "' is ", shown, ", not ", expected);
}

template <typename Integer>
void read_field(const char* field, const nlohmann::json& value, Integer& out) {
  if (value.is_number_unsigned()) {
    const uint64_t v = value.get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<Integer>::max())) bad_field(field, value, "an integer in range");
    out = static_cast<Integer>(v);
  } else if (value.is_number_integer()) {
    const int64_t v = value.get<int64_t>();
    if (std::is_unsigned_v<Integer> || v < static_cast<int64_t>(std::numeric_limits<Integer>::min()) ||
        v > static_cast<int64_t>(std::numeric_limits<Integer>::max()))
      bad_field(field, value, "an integer in range");
    out = static_cast<Integer>(v);
  } else {
    bad_field(field, value, "an integer");
  }
}

void read_field(const char* field, const nlohmann::json& value, double& out) {
  if (!value.is_number() || !std::isfinite(value.get<double>())) bad_field(field, value, "a finite number");
  out = value.get<double>();
}

void read_field(const char* field, const nlohmann::json& value, bool& out) {
  if (!value.is_boolean()) bad_field(field, value, "true or false");
  out = value.get<bool>();
}

void read_field(const char* field, const nlohmann::json& value, std::string& out) {
  if (!value.is_string()) bad_field(field, value, "a string");
  out = value.get<std::string>();
  check_text(field, out);
}

}  // namespace

void check_text(const char* field, const std::string& text) {
  PIXGRAD_CHECK(text.size() <= kMaxTextBytes, "training options: field '", field, "' is ", text.size(),
                " bytes long (at most ", kMaxTextBytes, ")");
  PIXGRAD_CHECK(io::printable(text) == text, "training options: field '", field, "' ('", io::printable(text),
                "') holds control characters or malformed UTF-8");
}

TrainConfig config_from_json(const nlohmann::json& json) {
  PIXGRAD_CHECK(json.is_object(), "training options: expected a JSON object");
  TrainConfig config;
#define PIXGRAD_READ(field) \
  if (json.contains(#field)) read_field(#field, json.at(#field), config.field);
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
  // --tf32 and --precision name one setting. A --precision given now replaces
  // the saved one; --tf32 alone replaces it with tf32, and --tf32=false only
  // turns off a saved tf32 (it says "not tf32", which fp32, 3xtf32 and bf16
  // are) or an older run's unrecorded one.
  if (explicit_fields.count("precision") && !explicit_fields.count("tf32")) merged.tf32 = false;
  if (explicit_fields.count("tf32") && !explicit_fields.count("precision")) {
    if (requested.tf32)
      merged.precision = "tf32";
    else if (saved.tf32 || saved.precision == "tf32" || saved.precision.empty())
      merged.precision = "fp32";
  }
  return merged;
}

std::string steering_kept(const TrainConfig& resumed, const std::set<std::string>& explicit_fields) {
  // Where the data and results are, and how the machine computes, the start
  // line says; the rest would go unnoticed.
  static const std::set<std::string> shown_elsewhere = {"dataset", "output", "device", "conv_impl", "tf32",
                                                        "precision"};
  const nlohmann::json values = to_json(resumed), defaults = to_json(TrainConfig());
  std::string kept;
#define PIXGRAD_KEPT(field)                                                                          \
  if (!shown_elsewhere.count(#field) && !explicit_fields.count(#field) && values[#field] != defaults[#field]) \
    kept += (kept.empty() ? "--" : ", --") + option_name(#field) + " " + values[#field].dump();
  PIXGRAD_RUN_FIELDS(PIXGRAD_KEPT)
#undef PIXGRAD_KEPT
  return kept;
}

const std::vector<std::string>& precision_names() { return kernels::conv_precision_names(); }

std::string precision_name_list() { return kernels::listed_names(precision_names()); }

std::string option_name(const std::string& field) {
  std::string name = field;
  for (char& c : name)
    if (c == '_') c = '-';
  return name;
}

void validate(const TrainConfig& c) {
  PIXGRAD_CHECK(c.format == "aligned" || c.format == "cmp", "--format must be aligned or cmp, not '",
                io::printable(c.format), "'");
  PIXGRAD_CHECK(c.direction == "AtoB" || c.direction == "BtoA", "--direction must be AtoB or BtoA, not '",
                io::printable(c.direction), "'");
  data::parse_preprocess(c.preprocess);
  PIXGRAD_CHECK(c.format == "aligned" || c.preprocess == "resize_and_crop",
                "--preprocess ", io::printable(c.preprocess), ": the cmp format resizes the shorter side to "
                "--load-size and crops; --preprocess is for the aligned format");
  PIXGRAD_CHECK(c.input_nc >= 0 && c.input_nc <= 4 && c.output_nc >= 1 && c.output_nc <= 4,
                "--input-nc must be in 1..4 (0: the format's) and --output-nc in 1..4, got ", c.input_nc, " and ",
                c.output_nc, " (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA)");
  PIXGRAD_CHECK(c.format == "aligned" || ((c.input_nc == 0 || c.input_nc == 12) && c.output_nc == 3),
                "--format cmp reads 12-class label maps into RGB photos: --input-nc and --output-nc cannot change "
                "that (got ", c.input_nc, " and ", c.output_nc, ")");
  models::parse_preset(c.preset);
  models::parse_norm(c.norm);
  PIXGRAD_CHECK(c.discriminator == "patch" || c.discriminator == "pixel", "--discriminator must be patch or pixel, not '",
                io::printable(c.discriminator), "'");
  PIXGRAD_CHECK(c.discriminator == "patch" || c.preset == "paper", "--discriminator pixel needs --preset paper");
  models::parse_gan_objective(c.gan_mode);
  const std::string schedule = c.effective_schedule();
  PIXGRAD_CHECK(schedule == "linear" || schedule == "constant", "--schedule must be linear or constant, not '",
                io::printable(schedule), "'");
  for (const auto& [name, text] : {std::pair<const char*, const std::string&>{"dataset", c.dataset},
                                   {"train_split", c.train_split}, {"test_split", c.test_split},
                                   {"output", c.output}, {"device", c.device}, {"conv_impl", c.conv_impl},
                                   {"init_from", c.init_from}})
    check_text(name, text);
  for (const auto& [option, split] : {std::pair<const char*, const std::string&>{"--train-split", c.train_split},
                                      {"--test-split", c.test_split}})
    PIXGRAD_CHECK(!split.empty() && split != "." && split != ".." && split.find('/') == std::string::npos, option,
                  " must name a folder inside the dataset, not '", io::printable(split), "'");
  PIXGRAD_CHECK(c.batch_size >= 1 && c.batch_size <= 4096, "--batch-size must be in 1..4096, got ", c.batch_size);
  PIXGRAD_CHECK(c.world_size >= 1 && c.world_size <= 65536, "the run's world size must be in 1..65536, got ",
                c.world_size);
  PIXGRAD_CHECK(!c.cuda_graph || (c.world_size == 1 && !c.sync_bn),
                "--cuda-graph cannot capture data-parallel steps (their gradients are averaged across ranks)");
  const std::vector<std::string>& precisions = precision_names();
  PIXGRAD_CHECK(c.precision.empty() || std::find(precisions.begin(), precisions.end(), c.precision) != precisions.end(),
                "--precision must be ", precision_name_list(), ", not '", io::printable(c.precision), "'");
  PIXGRAD_CHECK(!c.tf32 || c.precision.empty() || c.precision == "tf32", "--tf32 and --precision ", c.precision,
                " disagree");
  const std::vector<std::string>& impls = kernels::conv_impl_names();
  PIXGRAD_CHECK(c.conv_impl.empty() || std::find(impls.begin(), impls.end(), c.conv_impl) != impls.end(),
                "--conv-impl must be ", kernels::listed_names(impls), ", not '", io::printable(c.conv_impl), "'");
  PIXGRAD_CHECK(!c.sync_bn || c.norm == "batch", "--sync-bn synchronises batch norm, but --norm is ",
                io::printable(c.norm));
  // Below a second, a collective would time out on an ordinary step's jitter.
  PIXGRAD_CHECK(std::isfinite(c.dist_timeout) && c.dist_timeout >= 1 && c.dist_timeout <= 1e6,
                "--dist-timeout must be in [1, 1e6] seconds, got ", c.dist_timeout);
  PIXGRAD_CHECK(c.epochs >= 1 && c.epochs <= 1000000, "--epochs must be in 1..1000000, got ", c.epochs);
  PIXGRAD_CHECK(c.decay_epochs >= -1 && c.decay_epochs <= c.epochs, "--decay-epochs must be -1 (half of --epochs) or in 0..",
                c.epochs, ", got ", c.decay_epochs);
  PIXGRAD_CHECK(c.crop_size >= 1 && c.load_size >= c.crop_size, "--crop-size (", c.crop_size,
                ") must be >= 1 and <= --load-size (", c.load_size, ")");
  PIXGRAD_CHECK(c.load_size <= 8192, "--load-size ", c.load_size, " exceeds 8192");
  PIXGRAD_CHECK(std::isfinite(c.lr) && c.lr > 0 && c.lr <= 1, "--lr must be a number in (0, 1], got ", c.lr);
  // Closer to 1 and Adam's bias correction 1 - beta1^t rounds to nearly nothing.
  PIXGRAD_CHECK(std::isfinite(c.beta1) && c.beta1 >= 0 && c.beta1 <= 0.999, "--beta1 must be in [0, 0.999], got ",
                c.beta1);
  PIXGRAD_CHECK(std::isfinite(c.lambda_l1) && c.lambda_l1 >= 0 && c.lambda_l1 <= 1e6,
                "--lambda-l1 must be a number in [0, 1e6], got ", c.lambda_l1);
  PIXGRAD_CHECK(c.ngf >= 1 && c.ngf <= 1024 && c.ndf >= 2 && c.ndf <= 1024, "--ngf must be in 1..1024 and --ndf in 2..1024 (got ",
                c.ngf, " and ", c.ndf, ")");
  // Under none and scale_width the crop does not fix the size: the images' own sides are checked on reading.
  const bool fixed_crop = c.preprocess != "none" && c.preprocess != "scale_width";
  PIXGRAD_CHECK(c.num_downs >= 0 && c.num_downs <= 12 && (!fixed_crop || (int64_t{1} << c.num_downs) <= c.crop_size),
                "--num-downs ", c.num_downs, " must be in 0..12 with 2^num_downs <= --crop-size (", c.crop_size, ")");
  PIXGRAD_CHECK(c.n_layers >= 1 && c.n_layers <= 8, "--n-layers must be in 1..8, got ", c.n_layers);
  PIXGRAD_CHECK(c.crop_size <= 8192, "--crop-size ", c.crop_size, " exceeds 8192");
  PIXGRAD_CHECK(c.max_iterations >= 0, "--max-iterations must be >= 0, got ", c.max_iterations);
  PIXGRAD_CHECK(c.log_interval >= 1 && c.snapshot_interval >= 1 && c.eval_interval >= 0,
                "--log-interval and --snapshot-interval must be >= 1, --eval-interval >= 0");
  PIXGRAD_CHECK(c.workers >= 1 && c.workers <= 64 && c.preview_count >= 0 && c.preview_count <= 64,
                "--workers must be in 1..64 and --preview-count in 0..64");
  PIXGRAD_CHECK(c.save_epoch_freq >= 0 && c.keep_checkpoints >= 0 && c.keep_checkpoints <= 100000,
                "--save-epoch-freq must be >= 0 and --keep-checkpoints in 0..100000, got ", c.save_epoch_freq,
                " and ", c.keep_checkpoints);
}

}  // namespace pixgrad::training
