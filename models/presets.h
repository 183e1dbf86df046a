// The two reference configurations pixgrad reproduces.
//   paper   — the PyTorch reference (junyanz/pytorch-CycleGAN-and-pix2pix):
//             unet_256 + 70x70 PatchGAN, D updated first on the detached fake.
//   chainer — the original Chainer trainer (pfnet-research/chainer-pix2pix):
//             3x3-in/3x3-out encoder-decoder, two-stream D, one forward pass
//             drives both updates.
#pragma once

#include <string>

namespace pixgrad::models {

enum class Preset { Paper, Chainer };
enum class NormKind { Batch, Instance, None };

Preset parse_preset(const std::string& text);  // "paper" | "chainer"
std::string to_string(Preset preset);
NormKind parse_norm(const std::string& text);  // "batch" | "instance" | "none"
std::string to_string(NormKind norm);

}  // namespace pixgrad::models
