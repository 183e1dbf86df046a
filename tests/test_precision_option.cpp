// --precision (and its older spelling --tf32): what the options accept, how a
// resumed run replaces a saved choice, and what a build without CUDA refuses.
// The arithmetic itself is checked on a GPU (tests/cuda/test_cuda_conv.cpp)
// and, for the handwritten kernels' indexing, on the host
// (tests/cuda_host/implicit_gemm_host_model.cu).
#include <catch2/catch.hpp>

#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include <pixgrad/core/error.h>
#include <pixgrad/training/model_factory.h>
#include <pixgrad/training/train_config.h>

#ifdef PIXGRAD_WITH_CUDA
#include <pixgrad/kernels/cuda/conv2d.h>
#endif

using namespace pixgrad;
using Catch::Matchers::Contains;

namespace {

training::TrainConfig config_with(const std::string& precision, bool tf32) {
  training::TrainConfig c;
  c.dataset = "data";
  c.precision = precision;
  c.tf32 = tf32;
  return c;
}

}  // namespace

TEST_CASE("The precision option accepts fp32, tf32 and 3xtf32, and --tf32 only beside tf32", "[precision]") {
  for (const char* name : {"", "fp32", "tf32", "3xtf32"}) CHECK_NOTHROW(training::validate(config_with(name, false)));
  CHECK_NOTHROW(training::validate(config_with("tf32", true)));
  CHECK_NOTHROW(training::validate(config_with("", true)));
  CHECK_THROWS_WITH(training::validate(config_with("bf16", false)),
                    Contains("--precision must be fp32, tf32 or 3xtf32, not 'bf16'"));
  CHECK_THROWS_WITH(training::validate(config_with("3xtf32", true)), Contains("--tf32 and --precision 3xtf32 disagree"));
  CHECK_THROWS_WITH(training::select_precision("fp32", true), Contains("--tf32 and --precision fp32 disagree"));
}

TEST_CASE("A resumed run's --precision or --tf32 replaces the saved choice", "[precision]") {
  const training::TrainConfig saved_tf32 = config_with("", true);
  training::TrainConfig merged = training::merge_for_resume(saved_tf32, config_with("3xtf32", false), {"precision"}, "c");
  CHECK(merged.precision == "3xtf32");
  CHECK_FALSE(merged.tf32);
  CHECK_NOTHROW(training::validate(merged));

  const training::TrainConfig saved_3x = config_with("3xtf32", false);
  merged = training::merge_for_resume(saved_3x, config_with("", true), {"tf32"}, "c");
  CHECK(merged.tf32);
  CHECK(merged.precision.empty());
  CHECK_NOTHROW(training::validate(merged));

  // Neither given: the saved choice stays.
  merged = training::merge_for_resume(saved_3x, config_with("", false), {}, "c");
  CHECK(merged.precision == "3xtf32");
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

#ifdef PIXGRAD_WITH_CUDA
TEST_CASE("The precision option sets the CUDA convolutions' arithmetic", "[precision]") {
  namespace cuda = kernels::cuda;
  const cuda::ConvPrecision saved = cuda::conv_precision();
  for (const char* name : {"fp32", "tf32", "3xtf32"}) {
    CHECK(std::string(cuda::to_string(cuda::parse_conv_precision(name))) == name);
    training::select_precision(name, false);
    CHECK(std::string(cuda::to_string(cuda::conv_precision())) == name);
    CHECK(cuda::allow_tf32() == (std::string(name) == "tf32"));  // cuDNN and cuBLAS: TF32 only for tf32
  }
  training::select_precision("", true);
  CHECK(cuda::conv_precision() == cuda::ConvPrecision::Tf32);
  CHECK_THROWS_WITH(training::select_precision("fp16", false),
                    Contains("--precision: unknown 'fp16' (expected fp32, tf32 or 3xtf32)"));
  cuda::set_conv_precision(saved);
}
#else
TEST_CASE("A build without CUDA refuses tensor-core precisions", "[precision]") {
  CHECK_NOTHROW(training::select_precision("", false));
  CHECK_NOTHROW(training::select_precision("fp32", false));
  CHECK_THROWS_WITH(training::select_precision("tf32", false),
                    Contains("--precision tf32: pixgrad was built without CUDA"));
  CHECK_THROWS_WITH(training::select_precision("", true), Contains("--precision tf32: pixgrad was built without CUDA"));
}
#endif
