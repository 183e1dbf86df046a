// --precision (and its older spelling --tf32) and --conv-impl: what the
// options accept in either build, how a resumed run replaces a saved choice,
// what a run records, and how PIXGRAD_PRECISION and PIXGRAD_TF32 combine.
// The arithmetic itself is checked on a GPU (tests/cuda/test_cuda_conv.cpp)
// and, for the handwritten kernels' indexing, on the host
// (tests/cuda_host/implicit_gemm_host_model.cu).
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include <pixgrad/core/error.h>
#include <pixgrad/training/checkpoint.h>
#include <pixgrad/training/model_factory.h>
#include <pixgrad/training/train_config.h>
#include <pixgrad/training/trainer.h>
#include "environment_scope.h"
#include "tiny_run.h"

#include <pixgrad/kernels/conv_settings.h>
#include <pixgrad/kernels/cpu/gemm.h>
#ifdef PIXGRAD_WITH_CUDA
#include <pixgrad/kernels/cuda/conv2d.h>
#endif

using namespace pixgrad;
using Catch::Matchers::Contains;

namespace {

// Unset in every test: the caller's values would change the results.
const std::vector<std::string> kSettingVariables = {"PIXGRAD_PRECISION", "PIXGRAD_TF32", "PIXGRAD_CONV_IMPL"};

training::TrainConfig config_with(const std::string& precision, bool tf32) {
  training::TrainConfig c;
  c.dataset = "data";
  c.precision = precision;
  c.tf32 = tf32;
  return c;
}

// The process-wide convolution settings, put back after a test that changes
// them (declare it after the EnvironmentScope: it reads them).
class SettingsScope {
 public:
  ~SettingsScope() {
    kernels::set_conv_precision(precision_);
    kernels::set_conv_impl(impl_);
  }

 private:
  const kernels::ConvPrecision precision_ = kernels::conv_precision();
  const kernels::ConvImpl impl_ = kernels::conv_impl();
};

}  // namespace

TEST_CASE("The precision option accepts fp32, tf32, 3xtf32 and bf16, and --tf32 only beside tf32", "[precision]") {
  const testing::EnvironmentScope clean(kSettingVariables, {});
  for (const char* name : {"", "fp32", "tf32", "3xtf32", "bf16"})
    CHECK_NOTHROW(training::validate(config_with(name, false)));
  CHECK_NOTHROW(training::validate(config_with("tf32", true)));
  CHECK_NOTHROW(training::validate(config_with("", true)));
  CHECK_THROWS_WITH(training::validate(config_with("fp16", false)),
                    Contains("--precision must be fp32, tf32, 3xtf32 or bf16, not 'fp16'"));
  CHECK_THROWS_WITH(training::validate(config_with("bf16", true)), Contains("--tf32 and --precision bf16 disagree"));
  CHECK_THROWS_WITH(training::validate(config_with("3xtf32", true)), Contains("--tf32 and --precision 3xtf32 disagree"));
  CHECK_THROWS_WITH(training::select_precision("fp32", true), Contains("--tf32 and --precision fp32 disagree"));
  // Both builds: a command line valid in one is valid in the other.
  CHECK_THROWS_WITH(training::select_precision("fp16", false),
                    Contains("--precision: unknown 'fp16' (expected fp32, tf32, 3xtf32 or bf16)"));
}

TEST_CASE("A resumed run's --precision or --tf32 replaces the saved choice", "[precision]") {
  const training::TrainConfig saved_tf32 = config_with("tf32", true);
  training::TrainConfig merged = training::merge_for_resume(saved_tf32, config_with("3xtf32", false), {"precision"}, "c");
  CHECK(merged.precision == "3xtf32");
  CHECK_FALSE(merged.tf32);
  CHECK_NOTHROW(training::validate(merged));

  const training::TrainConfig saved_3x = config_with("3xtf32", false);
  merged = training::merge_for_resume(saved_3x, config_with("", true), {"tf32"}, "c");
  CHECK(merged.tf32);
  CHECK(merged.precision == "tf32");
  CHECK_NOTHROW(training::validate(merged));

  // Neither given: the saved choice stays.
  merged = training::merge_for_resume(saved_3x, config_with("", false), {}, "c");
  CHECK(merged.precision == "3xtf32");
}

TEST_CASE("A resumed run's --tf32=false turns a saved tf32 into fp32 and keeps fp32 or 3xtf32", "[precision]") {
  // Saved as recorded now (tf32 beside precision tf32), before (precision tf32 alone), and by
  // runs older than --precision (--tf32 alone).
  const std::pair<training::TrainConfig, const char*> cases[] = {
      {config_with("3xtf32", false), "3xtf32"}, {config_with("fp32", false), "fp32"},
      {config_with("tf32", true), "fp32"},      {config_with("tf32", false), "fp32"},
      {config_with("", true), "fp32"},          {config_with("", false), "fp32"},  // unrecorded: not the environment's
  };
  for (const auto& [saved, expected] : cases) {
    INFO("saved --precision '" << saved.precision << "', --tf32 " << saved.tf32);
    const training::TrainConfig merged = training::merge_for_resume(saved, config_with("", false), {"tf32"}, "c");
    CHECK(merged.precision == expected);
    CHECK_FALSE(merged.tf32);
    CHECK_NOTHROW(training::validate(merged));
  }
}

TEST_CASE("The precision is saved with the run's options and read back", "[precision]") {
  const training::TrainConfig c = config_with("3xtf32", false);
  const training::TrainConfig back = training::config_from_json(training::to_json(c));
  CHECK(back.precision == "3xtf32");
  CHECK_FALSE(back.tf32);
  // Options saved before --precision existed hold only "tf32".
  nlohmann::json old = training::to_json(config_with("", true));
  old.erase("precision");
  const training::TrainConfig old_back = training::config_from_json(old);
  CHECK(old_back.tf32);
  CHECK(old_back.precision.empty());
}

TEST_CASE("Selecting the precision and convolutions returns the settings in effect", "[precision]") {
  const testing::EnvironmentScope clean(kSettingVariables, {});
  const SettingsScope settings;
  CHECK(training::select_precision("3xtf32", false) == "3xtf32");
  CHECK(training::select_precision("", true) == "tf32");
  CHECK(training::select_precision("fp32", false) == "fp32");
  CHECK(training::select_precision("bf16", false) == "bf16");
  // Nothing asked for: the setting in effect (on first use, the environment's), never "".
  kernels::set_conv_precision(kernels::ConvPrecision::Tf32x3);
  CHECK(training::select_precision("", false) == "3xtf32");
  kernels::set_conv_impl(kernels::ConvImpl::Cudnn);
  CHECK(training::select_conv_impl("") == "cudnn");
  // Every build accepts every implementation (CPU convolutions are ours whatever it says).
  CHECK(training::select_conv_impl("cublas") == "cublas");
  CHECK(training::select_conv_impl("handwritten") == "handwritten");
  CHECK_THROWS_WITH(training::select_conv_impl("CUDNN"),
                    Contains("--conv-impl: unknown 'CUDNN' (expected handwritten, cudnn or cublas)"));
}

TEST_CASE("A run records the precision and convolutions in effect, never an empty setting", "[precision][training]") {
  const testing::EnvironmentScope clean(kSettingVariables, {});
  if (!testing::have_shared_data(testing::facades_root())) return;
  const SettingsScope settings;
  // As PIXGRAD_PRECISION=tf32 and PIXGRAD_CONV_IMPL=cublas would set them.
  kernels::set_conv_precision(kernels::ConvPrecision::Tf32);
  kernels::set_conv_impl(kernels::ConvImpl::Cublas);
  const std::string precision = "tf32", impl = "cublas";
  const std::filesystem::path out = testing::fresh_folder("precision_recorded");
  training::TrainConfig config = testing::tiny_config("paper", out);
  config.device = "cpu";
  config.max_iterations = 1;
  REQUIRE(training::Trainer(config).run().trained == 1);

  const nlohmann::json options = nlohmann::json::parse(std::ifstream(out / "options.json"));
  CHECK(options["precision"] == precision);
  CHECK(options["conv_impl"] == impl);
  CHECK(options["tf32"] == (precision == "tf32"));
  const training::Checkpoint checkpoint = training::load_checkpoint((out / "checkpoint.safetensors").string());
  CHECK(checkpoint.config.precision == precision);  // what a resumed run continues with
  CHECK(checkpoint.config.conv_impl == impl);
  std::filesystem::remove_all(out);
}

TEST_CASE("A CPU run asked for bf16 logs how its convolutions computed, and keeps bf16 in its options",
          "[precision][training]") {
  const testing::EnvironmentScope clean(kSettingVariables, {});
  if (!testing::have_shared_data(testing::facades_root())) return;
  const SettingsScope settings;
  const std::filesystem::path out = testing::fresh_folder("precision_logged");
  training::TrainConfig config = testing::tiny_config("paper", out);
  config.device = "cpu";
  config.precision = "bf16";
  config.max_iterations = 1;
  REQUIRE(training::Trainer(config).run().trained == 1);

  std::ifstream log(out / "log.jsonl");
  std::string first;
  REQUIRE(std::getline(log, first));
  const nlohmann::json start = nlohmann::json::parse(first);
  REQUIRE(start["event"] == "start");
  const std::string convolutions = start.value("convolutions", "");
  if (kernels::cpu::gemm_bf16_supported()) {
    CHECK(convolutions == "bf16 convolutions");
  } else {
    // The fallback is logged with its cause; the run still asked for bf16.
    CHECK_THAT(convolutions, Catch::Matchers::StartsWith("fp32 convolutions: bf16 ") && Contains("AVX-512 BF16"));
  }
  const nlohmann::json options = nlohmann::json::parse(std::ifstream(out / "options.json"));
  CHECK(options["precision"] == "bf16");
  std::filesystem::remove_all(out);
}

TEST_CASE("An explicit --tf32=false on a new run means fp32, whatever the environment says", "[precision][training]") {
  const testing::EnvironmentScope tf32_environment(kSettingVariables, {{"PIXGRAD_PRECISION", "tf32"}});
  if (!testing::have_shared_data(testing::facades_root())) return;
  const SettingsScope settings;
  kernels::set_conv_precision(kernels::conv_precision_from_environment());  // as on first use
  const std::filesystem::path out = testing::fresh_folder("precision_tf32_false");
  training::TrainConfig config = testing::tiny_config("paper", out);
  config.device = "cpu";
  config.max_iterations = 1;
  REQUIRE(training::Trainer(config, "", {"tf32"}).run().trained == 1);
  const nlohmann::json options = nlohmann::json::parse(std::ifstream(out / "options.json"));
  CHECK(options["precision"] == "fp32");
  std::filesystem::remove_all(out);
}

TEST_CASE("Recorded settings are checked like a command line's, a nested value named by its type", "[precision]") {
  training::TrainConfig saved = config_with("bf16", true);
  CHECK_THROWS_WITH(training::validate(saved), Contains("--tf32 and --precision bf16 disagree"));
  saved = config_with("fp32", false);
  saved.conv_impl = "garbage";
  CHECK_THROWS_WITH(training::validate(saved),
                    Contains("--conv-impl must be handwritten, cudnn or cublas, not 'garbage'"));
  // A deeply nested value is named by its type, not dumped (dumping recurses as deep as it nests).
  nlohmann::json options = training::to_json(config_with("fp32", false));
  nlohmann::json nested = nlohmann::json::array();
  for (int i = 0; i < 1000; ++i) nested = nlohmann::json::array({nested});
  options["precision"] = nested;
  CHECK_THROWS_WITH(training::config_from_json(options), Contains("field 'precision' is an array"));
}

TEST_CASE("The precision option sets the CUDA convolutions' arithmetic", "[precision]") {
  const testing::EnvironmentScope clean(kSettingVariables, {});
  const SettingsScope settings;
  for (const char* name : {"fp32", "tf32", "3xtf32", "bf16"}) {
    CHECK(std::string(kernels::to_string(kernels::parse_conv_precision(name))) == name);
    training::select_precision(name, false);
    CHECK(std::string(kernels::to_string(kernels::conv_precision())) == name);
    CHECK(kernels::allow_tf32() == (std::string(name) == "tf32"));  // cuDNN and cuBLAS: TF32 only for tf32
  }
  training::select_precision("", true);
  CHECK(kernels::conv_precision() == kernels::ConvPrecision::Tf32);
}

#ifdef PIXGRAD_WITH_CUDA
TEST_CASE("The handwritten kernels report FP32 for the layers their FP32-only tile runs", "[precision]") {
  namespace cuda = kernels::cuda;
  const testing::EnvironmentScope clean(kSettingVariables, {});
  const SettingsScope settings;
  cuda::set_conv_precision(cuda::ConvPrecision::Bf16);
  // out_channels rows in forward and backward weight, in_channels in backward data.
  const int64_t edge = cuda::detail::kFp32OnlyRows;
  const kernels::Conv2dGeometry thin{1, edge + 1, 16, 16, edge, 4, 4, 2, 1};
  CHECK(cuda::conv_choice(cuda::ConvImpl::Handwritten, cuda::ConvPass::Forward, thin).math == "fp32");
  CHECK(cuda::conv_choice(cuda::ConvImpl::Handwritten, cuda::ConvPass::BackwardWeight, thin).math == "fp32");
  CHECK(cuda::conv_choice(cuda::ConvImpl::Handwritten, cuda::ConvPass::BackwardData, thin).math == "bf16");
  const kernels::Conv2dGeometry wide{1, edge, 16, 16, edge + 1, 4, 4, 2, 1};
  CHECK(cuda::conv_choice(cuda::ConvImpl::Handwritten, cuda::ConvPass::Forward, wide).math == "bf16");
  CHECK(cuda::conv_choice(cuda::ConvImpl::Handwritten, cuda::ConvPass::BackwardData, wide).math == "fp32");
}
#endif

TEST_CASE("PIXGRAD_TF32 contradicts PIXGRAD_PRECISION only over tf32", "[precision]") {
  struct Case {
    std::map<std::string, std::string> environment;
    const char* precision;  // nullptr: refused as a contradiction
  };
  const Case cases[] = {
      {{}, "fp32"},
      {{{"PIXGRAD_TF32", "1"}}, "tf32"},
      {{{"PIXGRAD_TF32", "0"}}, "fp32"},
      {{{"PIXGRAD_PRECISION", "3xtf32"}}, "3xtf32"},
      {{{"PIXGRAD_TF32", "0"}, {"PIXGRAD_PRECISION", "3xtf32"}}, "3xtf32"},
      {{{"PIXGRAD_TF32", "0"}, {"PIXGRAD_PRECISION", "fp32"}}, "fp32"},
      {{{"PIXGRAD_TF32", "1"}, {"PIXGRAD_PRECISION", "tf32"}}, "tf32"},
      {{{"PIXGRAD_TF32", "1"}, {"PIXGRAD_PRECISION", "3xtf32"}}, nullptr},
      {{{"PIXGRAD_TF32", "1"}, {"PIXGRAD_PRECISION", "fp32"}}, nullptr},
      {{{"PIXGRAD_TF32", "0"}, {"PIXGRAD_PRECISION", "tf32"}}, nullptr},
  };
  for (const Case& c : cases) {
    const testing::EnvironmentScope environment(kSettingVariables, c.environment);
    INFO("environment " << nlohmann::json(c.environment).dump());
    if (c.precision)
      CHECK(std::string(kernels::to_string(kernels::conv_precision_from_environment())) == c.precision);
    else
      CHECK_THROWS_WITH(kernels::conv_precision_from_environment(), Contains("contradicts PIXGRAD_TF32="));
  }
  // A long or odd value is cut and made printable in the message.
  const testing::EnvironmentScope long_value(kSettingVariables, {{"PIXGRAD_PRECISION", std::string(5000, 'x') + "\n"}});
  try {
    kernels::conv_precision_from_environment();
    FAIL("a 5000-character PIXGRAD_PRECISION was accepted");
  } catch (const Error& error) {
    CHECK(std::string(error.what()).size() < 200);
  }
}
