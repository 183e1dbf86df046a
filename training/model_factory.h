// Building the model and the datasets a TrainConfig describes, and the CUDA
// convolution settings; shared by train_pix2pix and pix2pix_translate so
// both build the same thing.
#pragma once

#include <memory>
#include <string>

#include <pixgrad/data/datasets.h>
#include <pixgrad/models/pix2pix.h>
#include <pixgrad/training/train_config.h>

namespace pixgrad::training {

models::Pix2PixOptions pix2pix_options(const TrainConfig& config);

// `augment`: the training pipeline (--preprocess with load_size, random
// crop, flip); otherwise the same with load_size = crop_size and no flip
// (resize_and_crop: straight to crop_size; scale_width*: the whole image at
// width load_size, its height keeping the aspect ratio), for previews and
// evaluation.
// Sides are cropped to the U-Net's multiple (data::AlignedOptions).
// The preset's reference pipeline details (resampling, pixel scaling, crop range).
data::Preprocessing preprocessing(const TrainConfig& config);
std::shared_ptr<data::Dataset> make_dataset(const TrainConfig& config, const std::string& split, bool augment);

// Picks the CUDA convolution implementation: "handwritten" (ours), "cudnn"
// or "cublas"; "" keeps the default (PIXGRAD_CONV_IMPL, else handwritten).
// Returns the setting in effect, for the run's records. The same in every
// build (kernels/conv_settings.h): CPU convolutions are ours whatever it says.
std::string select_conv_impl(const std::string& name);
// Sets the CUDA convolutions' arithmetic (--precision, precision_names();
// --tf32 is the same as --precision tf32); "" and false keep the default
// (PIXGRAD_PRECISION or PIXGRAD_TF32, else fp32). Returns the setting in
// effect, for the run's records; the same in every build. On the CPU only
// bf16 changes the arithmetic, and only on a CPU with AVX-512 BF16
// (kernels::cpu::conv_precision_in_effect()).
std::string select_precision(const std::string& precision, bool tf32);
// How convolutions on `device` compute with those settings, for start lines
// and records: "fp32 convolutions" or "bf16 convolutions" on the CPU (with
// the reason when bf16 was asked for and is not in effect), "tf32
// convolutions, handwritten" on CUDA.
std::string describe_convolutions(const Device& device, const std::string& precision, const std::string& conv_impl);

}  // namespace pixgrad::training
