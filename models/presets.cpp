#include <pixgrad/models/presets.h>

#include <pixgrad/core/error.h>

namespace pixgrad::models {

Preset parse_preset(const std::string& text) {
  if (text == "paper") return Preset::Paper;
  if (text == "chainer") return Preset::Chainer;
  fail("preset: unknown '", text, "' (expected paper or chainer)");
}

std::string to_string(Preset preset) { return preset == Preset::Paper ? "paper" : "chainer"; }

NormKind parse_norm(const std::string& text) {
  if (text == "batch") return NormKind::Batch;
  if (text == "instance") return NormKind::Instance;
  if (text == "none") return NormKind::None;
  fail("norm: unknown '", text, "' (expected batch, instance or none)");
}

std::string to_string(NormKind norm) {
  switch (norm) {
    case NormKind::Batch: return "batch";
    case NormKind::Instance: return "instance";
    case NormKind::None: return "none";
  }
  return "none";
}

}  // namespace pixgrad::models
