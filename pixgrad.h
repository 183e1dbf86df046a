// pixgrad in one include, for programs and experiments built on the library:
// tensors, autograd and ops, modules, optimisers, data loading, the pix2pix
// models and the training helpers a custom loop needs (checkpoints, previews,
// progress, metrics). Installed as <pixgrad/pixgrad.h>, beside the folders'
// own headers, which stay usable one by one; the kernels, the CLI trainer's
// internals (trainer, run folder, log, options) and the CUDA-only .cuh files
// are left out.
#pragma once

// core: pixgrad
#include <pixgrad/core/autograd.h>
#include <pixgrad/core/cuda_info.h>
#include <pixgrad/core/device.h>
#include <pixgrad/core/error.h>
#include <pixgrad/core/generator.h>
#include <pixgrad/core/ops.h>
#include <pixgrad/core/safetensors.h>
#include <pixgrad/core/tensor.h>

// layers: pixgrad::nn
#include <pixgrad/layers/activation.h>
#include <pixgrad/layers/conv.h>
#include <pixgrad/layers/forward_hook.h>
#include <pixgrad/layers/freeze.h>
#include <pixgrad/layers/init.h>
#include <pixgrad/layers/module.h>
#include <pixgrad/layers/normalization.h>
#include <pixgrad/layers/sequential.h>
#include <pixgrad/layers/sync_batch_norm.h>

// optim: pixgrad::optim
#include <pixgrad/optim/optimizer.h>
#include <pixgrad/optim/schedule.h>

// data: pixgrad::data
#include <pixgrad/data/datasets.h>
#include <pixgrad/data/image.h>
#include <pixgrad/data/loader.h>

// models: pixgrad::models (GAN objectives and penalties, generators,
// discriminators, the pix2pix model and its step strategies)
#include <pixgrad/models/chainer_discriminator.h>
#include <pixgrad/models/chainer_unet.h>
#include <pixgrad/models/gan.h>
#include <pixgrad/models/graphed_step.h>
#include <pixgrad/models/networks.h>
#include <pixgrad/models/nlayer_discriminator.h>
#include <pixgrad/models/penalties.h>
#include <pixgrad/models/pix2pix.h>
#include <pixgrad/models/pixel_discriminator.h>
#include <pixgrad/models/presets.h>
#include <pixgrad/models/unet.h>

// distributed: pixgrad::distributed (data-parallel training across processes)
#include <pixgrad/distributed/all_reduce.h>
#include <pixgrad/distributed/communicator.h>
#include <pixgrad/distributed/gradient_average.h>
#include <pixgrad/distributed/mpi_communicator.h>
#include <pixgrad/distributed/nccl_communicator.h>

// training: pixgrad::training
#include <pixgrad/training/checkpoint.h>
#include <pixgrad/training/html_report.h>
#include <pixgrad/training/metrics.h>
#include <pixgrad/training/preview.h>
#include <pixgrad/training/progress.h>
