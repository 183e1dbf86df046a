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

#ifdef PIXGRAD_WITH_CUDA
// The process-wide CUDA convolution settings, put back after a test that
// changes them (declare it after the EnvironmentScope: it reads them).
class CudaSettingsScope {
 public:
  ~CudaSettingsScope() {
    kernels::cuda::set_conv_precision(precision_);
    kernels::cuda::set_conv_impl(impl_);
  }

 private:
  const kernels::cuda::ConvPrecision precision_ = kernels::cuda::conv_precision();
  const kernels::cuda::ConvImpl impl_ = kernels::cuda::conv_impl();
};
#endif

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
      {config_with("", true), "fp32"},
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
#ifdef PIXGRAD_WITH_CUDA
  const CudaSettingsScope settings;
#endif
  CHECK(training::select_precision("3xtf32", false) == "3xtf32");
  CHECK(training::select_precision("", true) == "tf32");
  CHECK(training::select_precision("fp32", false) == "fp32");
#ifdef PIXGRAD_WITH_CUDA
  // Nothing asked for: the setting in effect (on first use, the environment's), never "".
  kernels::cuda::set_conv_precision(kernels::cuda::ConvPrecision::Tf32x3);
  CHECK(training::select_precision("", false) == "3xtf32");
  kernels::cuda::set_conv_impl(kernels::cuda::ConvImpl::Cudnn);
  CHECK(training::select_conv_impl("") == "cudnn");
  CHECK(training::select_conv_impl("cublas") == "cublas");
#else
  CHECK(training::select_precision("", false) == "fp32");
  CHECK(training::select_conv_impl("") == "handwritten");
  CHECK(training::select_conv_impl("handwritten") == "handwritten");
#endif
}

TEST_CASE("A run records the precision and convolutions in effect, never an empty setting", "[precision][training]") {
  const testing::EnvironmentScope clean(kSettingVariables, {});
  if (!testing::have_shared_data(testing::facades_root())) return;
#ifdef PIXGRAD_WITH_CUDA
  const CudaSettingsScope settings;
  // As PIXGRAD_PRECISION=tf32 and PIXGRAD_CONV_IMPL=cublas would set them.
  kernels::cuda::set_conv_precision(kernels::cuda::ConvPrecision::Tf32);
  kernels::cuda::set_conv_impl(kernels::cuda::ConvImpl::Cublas);
  const std::string precision = "tf32", impl = "cublas";
#else
  const std::string precision = "fp32", impl = "handwritten";
#endif
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

#ifdef PIXGRAD_WITH_CUDA
TEST_CASE("The precision option sets the CUDA convolutions' arithmetic", "[precision]") {
  namespace cuda = kernels::cuda;
  const testing::EnvironmentScope clean(kSettingVariables, {});
  const CudaSettingsScope settings;
  for (const char* name : {"fp32", "tf32", "3xtf32", "bf16"}) {
    CHECK(std::string(cuda::to_string(cuda::parse_conv_precision(name))) == name);
    training::select_precision(name, false);
    CHECK(std::string(cuda::to_string(cuda::conv_precision())) == name);
    CHECK(cuda::allow_tf32() == (std::string(name) == "tf32"));  // cuDNN and cuBLAS: TF32 only for tf32
  }
  training::select_precision("", true);
  CHECK(cuda::conv_precision() == cuda::ConvPrecision::Tf32);
}

TEST_CASE("The handwritten kernels report FP32 for the layers their FP32-only tile runs", "[precision]") {
  namespace cuda = kernels::cuda;
  const testing::EnvironmentScope clean(kSettingVariables, {});
  const CudaSettingsScope settings;
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

TEST_CASE("PIXGRAD_TF32 contradicts PIXGRAD_PRECISION only over tf32", "[precision]") {
  namespace cuda = kernels::cuda;
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
      CHECK(std::string(cuda::to_string(cuda::conv_precision_from_environment())) == c.precision);
    else
      CHECK_THROWS_WITH(cuda::conv_precision_from_environment(), Contains("contradicts PIXGRAD_TF32="));
  }
}
#else
TEST_CASE("A build without CUDA accepts every precision (CPU convolutions compute in FP32)", "[precision]") {
  const testing::EnvironmentScope clean(kSettingVariables, {});
  CHECK(training::select_precision("tf32", false) == "tf32");
  CHECK(training::select_precision("3xtf32", false) == "3xtf32");
  CHECK(training::select_precision("bf16", false) == "bf16");
  CHECK_THROWS_WITH(training::select_conv_impl("cudnn"), Contains("--conv-impl cudnn: pixgrad was built without CUDA"));
}
#endif
