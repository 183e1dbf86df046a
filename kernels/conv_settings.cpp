#include <pixgrad/kernels/conv_settings.h>

#include <atomic>
#include <cstdlib>
#include <utility>

#include <pixgrad/core/error.h>
#include <pixgrad/core/file_io.h>

namespace pixgrad::kernels {
namespace {

constexpr int kUnset = -1;
std::atomic<int> g_conv_impl{kUnset};
std::atomic<int> g_precision{kUnset};
std::atomic<int> g_moments{kUnset};

// Each setting's names, in its enum's order.
const std::vector<std::string> kImplNames = {"handwritten", "cudnn", "cublas"};
const std::vector<std::string> kPrecisionNames = {"fp32", "tf32", "3xtf32", "bf16"};
const std::vector<std::string> kMomentNames = {"off", "on"};

// A value for a message: an environment variable may hold anything.
std::string shown(const std::string& text) {
  return io::printable(text.size() > 60 ? text.substr(0, 57) + "..." : text);
}

// The index of `text` in `names`; throws "unknown 'text' (expected ...)",
// which the caller prefixes with where the text came from.
int index_of(const std::vector<std::string>& names, const std::string& text) {
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == text) return static_cast<int>(i);
  fail("unknown '", shown(text), "' (expected ", listed_names(names), ")");
}

const char* name_at(const std::vector<std::string>& names, int index) {
  return index >= 0 && static_cast<size_t>(index) < names.size() ? names[static_cast<size_t>(index)].c_str()
                                                                   : "unknown";
}

// A variable's value, or nullptr when it is unset or empty.
const char* variable(const char* name) {
  const char* text = std::getenv(name);
  return text != nullptr && text[0] != '\0' ? text : nullptr;
}

ConvImpl impl_from_environment() {
  const char* text = variable("PIXGRAD_CONV_IMPL");
  if (text == nullptr) return ConvImpl::Handwritten;
  try {
    return parse_conv_impl(text);
  } catch (const Error& error) {
    fail("PIXGRAD_CONV_IMPL: ", error.what());
  }
}

// The setting stored in `slot`, or on first use the one `from_environment`
// reads (a bad variable throws there, on every call, until a setter is used).
template <class FromEnvironment>
auto setting_or_environment(std::atomic<int>& slot, FromEnvironment from_environment) {
  using Setting = decltype(from_environment());
  int value = slot.load(std::memory_order_acquire);
  if (value == kUnset) {
    int expected = kUnset;
    slot.compare_exchange_strong(expected, static_cast<int>(from_environment()), std::memory_order_acq_rel);
    value = slot.load(std::memory_order_acquire);
  }
  return static_cast<Setting>(value);
}

}  // namespace

std::string listed_names(const std::vector<std::string>& names) {
  std::string list;
  for (size_t i = 0; i < names.size(); ++i) list += (i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + names[i];
  return list;
}

ConvImpl parse_conv_impl(const std::string& text) { return static_cast<ConvImpl>(index_of(kImplNames, text)); }

const char* to_string(ConvImpl impl) { return name_at(kImplNames, static_cast<int>(impl)); }

const std::vector<std::string>& conv_impl_names() { return kImplNames; }

ConvImpl conv_impl() { return setting_or_environment(g_conv_impl, impl_from_environment); }

void set_conv_impl(ConvImpl impl) { g_conv_impl.store(static_cast<int>(impl), std::memory_order_release); }

ConvPrecision parse_conv_precision(const std::string& text) {
  return static_cast<ConvPrecision>(index_of(kPrecisionNames, text));
}

const char* to_string(ConvPrecision precision) { return name_at(kPrecisionNames, static_cast<int>(precision)); }

const std::vector<std::string>& conv_precision_names() { return kPrecisionNames; }

// PIXGRAD_PRECISION, or the older PIXGRAD_TF32 switch. Both set contradict
// only over TF32 itself: PIXGRAD_TF32=0 says "not tf32", which 3xtf32 (or
// fp32) respects.
ConvPrecision conv_precision_from_environment() {
  const char* tf32_text = variable("PIXGRAD_TF32");
  if (tf32_text != nullptr && std::string(tf32_text) != "0" && std::string(tf32_text) != "1")
    fail("PIXGRAD_TF32: '", shown(tf32_text), "' is neither 1 nor 0");
  const bool tf32_on = tf32_text != nullptr && std::string(tf32_text) == "1";
  const char* text = variable("PIXGRAD_PRECISION");
  if (text == nullptr) return tf32_on ? ConvPrecision::Tf32 : ConvPrecision::Fp32;
  ConvPrecision precision;
  try {
    precision = parse_conv_precision(text);
  } catch (const Error& error) {
    fail("PIXGRAD_PRECISION: ", error.what());
  }
  PIXGRAD_CHECK(tf32_text == nullptr || tf32_on == (precision == ConvPrecision::Tf32), "PIXGRAD_PRECISION=", text,
                " contradicts PIXGRAD_TF32=", tf32_text);
  return precision;
}

ConvPrecision conv_precision() { return setting_or_environment(g_precision, conv_precision_from_environment); }

void set_conv_precision(ConvPrecision precision) {
  g_precision.store(static_cast<int>(precision), std::memory_order_release);
}

bool parse_conv_moments(const std::string& text) { return index_of(kMomentNames, text) == 1; }

bool conv_moments_from_environment() {
  const char* text = variable("PIXGRAD_CONV_MOMENTS");
  if (text == nullptr) return true;
  try {
    return parse_conv_moments(text);
  } catch (const Error& error) {
    fail("PIXGRAD_CONV_MOMENTS: ", error.what());
  }
}

bool conv_moments() { return setting_or_environment(g_moments, conv_moments_from_environment); }

void set_conv_moments(bool on) { g_moments.store(on ? 1 : 0, std::memory_order_release); }

bool allow_tf32() { return conv_precision() == ConvPrecision::Tf32; }

void set_allow_tf32(bool allow) { set_conv_precision(allow ? ConvPrecision::Tf32 : ConvPrecision::Fp32); }

}  // namespace pixgrad::kernels
