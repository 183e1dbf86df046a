// Everything that defines a pix2pix model and its training step.
#pragma once

#include <cstdint>

#include <pixgrad/models/discriminator.h>
#include <pixgrad/models/gan.h>
#include <pixgrad/models/presets.h>
#include <pixgrad/models/unet_base.h>
#include <pixgrad/optim/optimizer.h>

namespace pixgrad::models {

struct Pix2PixOptions {
  Preset preset = Preset::Paper;  // the networks and the update order (models/networks.h, models/pix2pix_step.h)
  UnetOptions generator;
  PatchGanOptions discriminator;
  GanObjective objective = GanObjective::Vanilla;
  double lambda_l1 = 100;
  double lambda_adv = 1;
  optim::AdamOptions adam;

  // The references' constants. Input/output channels: 3/3 for facades
  // photos, 12/3 for CMP label maps.
  static Pix2PixOptions for_preset(Preset preset, int64_t input_channels, int64_t output_channels);
};

}  // namespace pixgrad::models
