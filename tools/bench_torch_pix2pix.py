#!/usr/bin/env python3
"""The pix2pix training step in plain PyTorch, timed like apps/bench_pix2pix.

The yardstick for pixgrad's two presets (--preset):

  paper    the unet_256 generator with the reference's structure, the 70x70
           PatchGAN (n_layers=3) on cat(x, y), BCE-with-logits GAN loss +
           100 * L1, Adam(2e-4, betas (0.5, 0.999)) for both networks, and the
           reference's update order: D on the detached fake with its loss
           halved, then G against the updated D with D's parameters frozen.
           Written for this comparison from the paper's description; no code
           of the pix2pix repository.
  chainer  the original Chainer trainer as pixgrad implements it
           (models/chainer_unet.cpp, chainer_discriminator.cpp,
           chainer_step.cpp), rewritten here in PyTorch: 12 input channels
           (the CMP label maps), a 3x3 conv stem, 7 downsamplings and 7
           upsamplings with batch norm (eps 2e-5) everywhere, dropout in the
           first three upsamplings, the skip concatenated after the upsampled
           features, a 3x3 conv head without tanh; a two-stream D (condition
           and image each through a 4x4 stride-2 conv to 32 channels,
           concatenated, three conv-norm-LeakyReLU downsamplings, a 3x3 conv
           to one channel); every conv with a bias. One forward pass drives
           both updates: G from softplus(-D(x, G(x))) + 100 * L1, backpropagated
           through D (whose gradients are then cleared), then D from
           softplus(-D(x, y)) + softplus(D(x, G(x))) with the graph cut at G(x).
           Adam(2e-4, betas (0.5, 0.999)) with weight decay 1e-5 added to the
           gradients; PyTorch's Adam puts its epsilon where Chainer's does not
           (the arithmetic, hence the time, is the same).

Both networks' parameter counts are checked against pixgrad's (docs/perf.md)
before anything is timed; a mismatch stops the run.

Timing: warm-up steps, then the median of timed steps; torch.cuda.Event
pairs around each step on the GPU, time.perf_counter on the CPU. Inputs are
fixed random tensors in [-1, 1] (no data loading), like bench_pix2pix: 3
channels for paper, 12 for chainer. After each configuration the process's
peak resident memory so far (getrusage ru_maxrss) is printed and recorded;
it cannot be reset, so it covers every configuration before it (modes in
the order given, batch sizes smallest first).

Modes:
  eager       plain PyTorch.
  cuda_graph  the whole step (both forward/backward passes and both Adam
              steps, capturable=True) captured once with torch.cuda.graph and
              replayed; if capturing the whole step fails, the generator's
              forward/backward alone through torch.cuda.make_graphed_callables
              (the mode is then reported as cuda_graph_partial).
  compile     torch.compile of both networks (default inductor backend),
              optimizers eager; compilation happens in the warm-up steps.
  autocast_bf16
              eager, with the forward passes and losses under
              torch.autocast(dtype=torch.bfloat16) (convolutions in bfloat16,
              what autocast keeps in float32 in float32); backward passes and
              Adam outside it, on float32 parameters. Meant for the CPU; on a
              GPU it runs the same with device_type "cuda" (bfloat16 needs
              sm_80 or newer). Not part of the default --modes.
A mode that cannot run reports "unavailable: <reason>" instead of a time.

Not part of CI: needs PyTorch (tools/gpu_check.sh runs it on the GPU
machine; docs/perf.md has the CPU comparison).
"""

import argparse
import contextlib
import json
import statistics
import sys
import time


MODE_NAMES = ("eager", "cuda_graph", "compile", "autocast_bf16")
PRESETS = ("paper", "chainer")
# pixgrad's parameter counts (docs/perf.md): generator, discriminator.
PIXGRAD_PARAMETERS = {"paper": (54_413_955, 2_768_705), "chainer": (54_421_635, 2_767_553)}


def make_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--preset", choices=PRESETS, default="paper",
                        help="the networks and update order of pixgrad's preset of that name")
    parser.add_argument("--batch-sizes", default="1,4,16")
    parser.add_argument("--modes", default="eager,cuda_graph,compile",
                        help=f"comma-separated, from {', '.join(MODE_NAMES)}")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=20, help="timed steps per configuration")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (default: PyTorch's)")
    parser.add_argument("--json", help="write the records to this file (rewritten after each configuration)")
    parser.add_argument("--tf32", choices=["off", "on"], default="off",
                        help="CUDA: TF32 tensor cores in convolutions and matmuls; 'off' (plain FP32) compares "
                             "with pixgrad's default, 'on' (PyTorch's default for cuDNN) with pixgrad --tf32")
    parser.add_argument("--dry-run", action="store_true",
                        help="check the arguments and print the plan without importing PyTorch")
    return parser


# The arguments are checked before PyTorch is imported, so that a machine
# without it can still check a command line (--dry-run).
if __name__ == "__main__":
    PARSER = make_parser()
    ARGS = PARSER.parse_args()
    for _mode in ARGS.modes.split(","):
        if _mode not in MODE_NAMES:
            PARSER.error(f"unknown mode {_mode!r} (expected {', '.join(MODE_NAMES)})")
    if ARGS.dry_run:
        print(f"would time the {ARGS.preset} preset in modes {ARGS.modes} at batch sizes {ARGS.batch_sizes} "
              f"on {ARGS.device}, TF32 {ARGS.tf32}, "
              f"{ARGS.warmup} warm-up + {ARGS.iterations} timed steps" + (f", JSON to {ARGS.json}" if ARGS.json else ""))
        sys.exit(0)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


# ---- models -------------------------------------------------------------------


class UnetGenerator(nn.Module):
    """unet_256: num_downs stride-2 4x4 convs down, as many transposed convs up.

    Level i (0 = outermost) downsamples with a conv; levels 1..n-1 apply
    LeakyReLU(0.2) to their input first, and that activated input is also the
    skip (the reference's in-place LeakyReLU), concatenated before the
    upsampled features. Batch norm after every down conv but the outermost and
    innermost, and after every up conv but the outermost; dropout 0.5 after
    the up convs of the num_downs - 5 levels just above the innermost; tanh
    at the output. With batch norm the convs have no bias, except the
    outermost up conv.
    """

    def __init__(self, input_nc=3, output_nc=3, num_downs=8, ngf=64):
        super().__init__()
        self.n = num_downs

        def width(level):
            return ngf * min(2 ** min(level, 3), 8)

        self.down = nn.ModuleList()
        self.down_norm = nn.ModuleList()
        for i in range(num_downs):
            in_c = input_nc if i == 0 else width(i - 1)
            self.down.append(nn.Conv2d(in_c, width(i), 4, 2, 1, bias=False))
            has_norm = 0 < i < num_downs - 1
            self.down_norm.append(nn.BatchNorm2d(width(i)) if has_norm else nn.Identity())
        self.up = nn.ModuleList()
        self.up_norm = nn.ModuleList()
        self.up_dropout = []
        for i in range(num_downs):
            in_c = width(i) if i == num_downs - 1 else 2 * width(i)
            out_c = output_nc if i == 0 else width(i - 1)
            self.up.append(nn.ConvTranspose2d(in_c, out_c, 4, 2, 1, bias=(i == 0)))
            self.up_norm.append(nn.BatchNorm2d(out_c) if i > 0 else nn.Identity())
            self.up_dropout.append(4 <= i <= num_downs - 2)

    def forward(self, x):
        skips = []
        h = self.down[0](x)
        for i in range(1, self.n):
            a = F.leaky_relu(h, 0.2)
            skips.append(a)
            h = self.down_norm[i](self.down[i](a))
        for i in range(self.n - 1, -1, -1):
            h = self.up_norm[i](self.up[i](F.relu(h)))
            if self.up_dropout[i]:
                h = F.dropout(h, 0.5, self.training)
            h = torch.tanh(h) if i == 0 else torch.cat([skips[i - 1], h], 1)
        return h


class PatchDiscriminator(nn.Module):
    """70x70 PatchGAN (n_layers=3): C64 (no norm) - C128 - C256 - C512 (stride 1) - 1 channel."""

    def __init__(self, input_nc=6, ndf=64, n_layers=3):
        super().__init__()
        layers = [nn.Conv2d(input_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2 ** n, 8)
            stride = 1 if n == n_layers else 2
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1, bias=False),
                       nn.BatchNorm2d(ndf * mult), nn.LeakyReLU(0.2)]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, 1, 1))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class ChainerUnet(nn.Module):
    """The chainer preset's generator (pixgrad's models/chainer_unet.cpp).

    A 3x3 stride-1 conv + LeakyReLU(0.2) (the stem), then num_downs 4x4
    stride-2 conv-norm-LeakyReLU(0.2) levels; num_downs 4x4 stride-2
    deconv-norm-(dropout)-ReLU levels, innermost first, each after the first
    taking cat(upsampled, encoder features of that level); dropout 0.5 in the
    first three; a 3x3 conv on cat(last upsampled, stem features), no tanh.
    Channels per level: ngf, 2 ngf, 4 ngf, then 8 ngf. Every conv has a bias.
    """

    def __init__(self, input_nc=12, output_nc=3, num_downs=7, ngf=64, eps=2e-5):
        super().__init__()
        self.n = num_downs

        def width(level):
            return ngf * min(2 ** min(level, 3), 8)

        self.stem = nn.Conv2d(input_nc, width(0), 3, 1, 1)
        self.down = nn.ModuleList(nn.Conv2d(width(i - 1), width(i), 4, 2, 1) for i in range(1, num_downs + 1))
        self.down_norm = nn.ModuleList(nn.BatchNorm2d(width(i), eps=eps) for i in range(1, num_downs + 1))
        self.up = nn.ModuleList()
        self.up_norm = nn.ModuleList()
        for j in range(num_downs):
            in_c = width(num_downs) if j == 0 else 2 * width(num_downs - j)
            out_c = width(num_downs - 1 - j)
            self.up.append(nn.ConvTranspose2d(in_c, out_c, 4, 2, 1))
            self.up_norm.append(nn.BatchNorm2d(out_c, eps=eps))
        self.head = nn.Conv2d(2 * width(0), output_nc, 3, 1, 1)

    def forward(self, x):
        features = [F.leaky_relu(self.stem(x), 0.2)]
        for conv, norm in zip(self.down, self.down_norm):
            features.append(F.leaky_relu(norm(conv(features[-1])), 0.2))
        h = features[-1]
        for j, (conv, norm) in enumerate(zip(self.up, self.up_norm)):
            if j > 0:
                h = torch.cat([h, features[self.n - j]], 1)
            h = norm(conv(h))
            if j < 3:
                h = F.dropout(h, 0.5, self.training)
            h = F.relu(h)
        return self.head(torch.cat([h, features[0]], 1))


class ChainerDiscriminator(nn.Module):
    """The chainer preset's two-stream discriminator (pixgrad's models/chainer_discriminator.cpp).

    The condition and the image each through a 4x4 stride-2 conv +
    LeakyReLU(0.2) to ndf/2 channels, concatenated (condition first); three
    4x4 stride-2 conv-norm-LeakyReLU(0.2) layers doubling the channels; a
    3x3 conv to one channel. Every conv has a bias.
    """

    def __init__(self, condition_nc=12, image_nc=3, ndf=64, eps=2e-5):
        super().__init__()
        self.condition_stream = nn.Conv2d(condition_nc, ndf // 2, 4, 2, 1)
        self.image_stream = nn.Conv2d(image_nc, ndf // 2, 4, 2, 1)
        layers = []
        for width in (ndf, 2 * ndf, 4 * ndf):
            layers += [nn.Conv2d(width, 2 * width, 4, 2, 1), nn.BatchNorm2d(2 * width, eps=eps), nn.LeakyReLU(0.2)]
        layers.append(nn.Conv2d(8 * ndf, 1, 3, 1, 1))
        self.model = nn.Sequential(*layers)

    def forward(self, condition, image):
        return self.model(torch.cat([F.leaky_relu(self.condition_stream(condition), 0.2),
                                     F.leaky_relu(self.image_stream(image), 0.2)], 1))


def init_weights(module):
    """Conv weights N(0, 0.02); batch-norm weights N(1, 0.02); biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def make_networks(preset):
    """(G, D) of the preset, on the current default device."""
    if preset == "chainer":
        return ChainerUnet(), ChainerDiscriminator()
    return UnetGenerator(), PatchDiscriminator()


def input_channels(preset):
    return 12 if preset == "chainer" else 3


def parameter_counts(preset):
    """(G, D) parameter counts, from networks built on the meta device (no memory)."""
    with torch.device("meta"):
        networks = make_networks(preset)
    return tuple(sum(p.numel() for p in network.parameters()) for network in networks)


# ---- the training step --------------------------------------------------------


class Pix2Pix:
    def __init__(self, preset, device, capturable=False, autocast_dtype=None):
        self.preset = preset
        G, D = make_networks(preset)
        self.G = G.to(device)
        self.D = D.to(device)
        init_weights(self.G)
        init_weights(self.D)
        self.G.train()
        self.D.train()
        kwargs = {"lr": 2e-4, "betas": (0.5, 0.999)}
        if preset == "chainer":
            kwargs["weight_decay"] = 1e-5  # the original trainer's WeightDecay hook: + 1e-5 * w on the gradient
        if capturable:
            kwargs["capturable"] = True
        self.opt_G = torch.optim.Adam(self.G.parameters(), **kwargs)
        self.opt_D = torch.optim.Adam(self.D.parameters(), **kwargs)
        self.G_forward = self.G
        self.D_forward = self.D
        self.D_parameters = list(self.D.parameters())
        # Forward passes and losses run under this; backward passes and Adam do not.
        if autocast_dtype is None:
            self.autocast = contextlib.nullcontext
        else:
            self.autocast = lambda: torch.autocast(device.type, dtype=autocast_dtype)

    def step(self, real_A, real_B, zero_grad=True):
        if self.preset == "chainer":
            return self.chainer_step(real_A, real_B, zero_grad)
        return self.paper_step(real_A, real_B, zero_grad)

    def set_requires_grad(self, module, flag):
        for p in module.parameters():
            p.requires_grad_(flag)

    def paper_step(self, real_A, real_B, zero_grad):
        with self.autocast():
            fake_B = self.G_forward(real_A)
        # D: fake (detached) and real, loss halved.
        self.set_requires_grad(self.D, True)
        if zero_grad:
            self.opt_D.zero_grad(set_to_none=True)
        with self.autocast():
            pred_fake = self.D_forward(torch.cat([real_A, fake_B.detach()], 1))
            loss_D_fake = F.binary_cross_entropy_with_logits(pred_fake, torch.zeros_like(pred_fake))
            pred_real = self.D_forward(torch.cat([real_A, real_B], 1))
            loss_D_real = F.binary_cross_entropy_with_logits(pred_real, torch.ones_like(pred_real))
            loss_D = (loss_D_fake + loss_D_real) * 0.5
        loss_D.backward()
        self.opt_D.step()
        # G: against the updated D, D frozen.
        self.set_requires_grad(self.D, False)
        if zero_grad:
            self.opt_G.zero_grad(set_to_none=True)
        with self.autocast():
            pred_fake = self.D_forward(torch.cat([real_A, fake_B], 1))
            loss_G_GAN = F.binary_cross_entropy_with_logits(pred_fake, torch.ones_like(pred_fake))
            loss_G_L1 = F.l1_loss(fake_B, real_B) * 100.0
            loss_G = loss_G_GAN + loss_G_L1
        loss_G.backward()
        self.opt_G.step()
        return loss_G, loss_D

    def chainer_step(self, real_A, real_B, zero_grad):
        # One forward pass for both updates.
        with self.autocast():
            fake_B = self.G_forward(real_A)
            pred_fake = self.D_forward(real_A, fake_B)
            pred_real = self.D_forward(real_A, real_B)
            loss_G = F.softplus(-pred_fake).mean() + 100.0 * F.l1_loss(fake_B, real_B)
            loss_D = F.softplus(-pred_real).mean() + F.softplus(pred_fake).mean()
        # G: backpropagated through D (computing D's gradients too), D's graph kept.
        if zero_grad:
            self.opt_G.zero_grad(set_to_none=True)
        loss_G.backward(retain_graph=True)
        self.opt_G.step()
        # D: its gradients from G's loss cleared (zeroed in place where a
        # captured graph owns them), the graph cut at G(x) by asking for D's
        # parameters' gradients alone.
        self.opt_D.zero_grad(set_to_none=zero_grad)
        loss_D.backward(inputs=self.D_parameters)
        self.opt_D.step()
        return loss_G, loss_D


# ---- timing -------------------------------------------------------------------


def time_steps(run_step, device, warmup, iterations):
    """Median seconds per step after `warmup` untimed steps."""
    for _ in range(warmup):
        run_step()
    times = []
    if device.type == "cuda":
        torch.cuda.synchronize()
        pairs = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
                 for _ in range(iterations)]
        for start, stop in pairs:
            start.record()
            run_step()
            stop.record()
        torch.cuda.synchronize()
        times = [start.elapsed_time(stop) / 1e3 for start, stop in pairs]
    else:
        for _ in range(iterations):
            started = time.perf_counter()
            run_step()
            times.append(time.perf_counter() - started)
    return statistics.median(times)


class Config:
    """One configuration: the preset, the device, the batch size and the timing's step counts."""

    def __init__(self, preset, device, batch, size, warmup, iterations):
        self.preset, self.device, self.batch, self.size = preset, device, batch, size
        self.warmup, self.iterations = warmup, iterations

    def model(self, **kwargs):
        torch.manual_seed(1)
        return Pix2Pix(self.preset, self.device, **kwargs)

    def inputs(self):
        """Fixed random (input, target) in [-1, 1]: the preset's input channels, 3 target channels."""
        generator = torch.Generator().manual_seed(2)
        shape = (self.batch, input_channels(self.preset), self.size, self.size)
        real_A = (torch.rand(*shape, generator=generator) * 2 - 1).to(self.device)
        real_B = (torch.rand(self.batch, 3, self.size, self.size, generator=generator) * 2 - 1).to(self.device)
        return real_A, real_B

    def time(self, run_step, warmup=None):
        return time_steps(run_step, self.device, self.warmup if warmup is None else warmup, self.iterations)


def bench_eager(c):
    model = c.model()
    real_A, real_B = c.inputs()
    return "eager", c.time(lambda: model.step(real_A, real_B))


def bench_autocast_bf16(c):
    model = c.model(autocast_dtype=torch.bfloat16)
    real_A, real_B = c.inputs()
    return "autocast_bf16", c.time(lambda: model.step(real_A, real_B))


def bench_cuda_graph(c):
    if c.device.type != "cuda":
        raise RuntimeError("CUDA graphs need --device cuda")
    try:
        return "cuda_graph", whole_step_graph(c)
    except Exception as error:  # noqa: BLE001 - any capture failure falls back
        print(f"  cuda_graph: whole-step capture failed ({type(error).__name__}: {error}); "
              "trying the generator alone", file=sys.stderr)
    return "cuda_graph_partial", generator_graph(c)


def whole_step_graph(c):
    model = c.model(capturable=True)
    real_A, real_B = c.inputs()
    # Warm up on a side stream (as torch.cuda.graph requires), so that lazy
    # initialisation (cuDNN plans, optimizer state) happens before capture.
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            model.step(real_A, real_B)
    torch.cuda.current_stream().wait_stream(side)
    # Gradients are created inside the capture, in the graph's memory pool;
    # each replay overwrites them, which is what zeroing would have done.
    model.opt_D.zero_grad(set_to_none=True)
    model.opt_G.zero_grad(set_to_none=True)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        model.step(real_A, real_B, zero_grad=False)
    return c.time(graph.replay)


def generator_graph(c):
    model = c.model()
    real_A, real_B = c.inputs()
    model.G_forward = torch.cuda.make_graphed_callables(model.G, (real_A,))
    return c.time(lambda: model.step(real_A, real_B))


def bench_compile(c):
    if not hasattr(torch, "compile"):
        raise RuntimeError("torch.compile is not in this PyTorch")
    model = c.model()
    model.G_forward = torch.compile(model.G)
    model.D_forward = torch.compile(model.D)
    real_A, real_B = c.inputs()
    started = time.perf_counter()
    model.step(real_A, real_B)  # compiles (and recompiles for the frozen-D pass on the next steps)
    print(f"  compile: first step {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return "compile", c.time(lambda: model.step(real_A, real_B), warmup=max(c.warmup, 2))


MODES = {"eager": bench_eager, "cuda_graph": bench_cuda_graph, "compile": bench_compile,
         "autocast_bf16": bench_autocast_bf16}


def peak_rss_mib():
    """The process's peak resident set size so far (getrusage ru_maxrss), in MiB; None where unknown."""
    try:
        import resource
    except ImportError:  # not a Unix
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB elsewhere


def check_parameter_counts(preset):
    """Prints the networks' parameter counts; exits unless they are pixgrad's."""
    counts = parameter_counts(preset)
    expected = PIXGRAD_PARAMETERS[preset]
    same = counts == expected
    print(f"{preset} preset: parameters G {counts[0]:,} + D {counts[1]:,}".replace(",", " ") +
          (" (as pixgrad's)" if same else f"; pixgrad has G {expected[0]:,} + D {expected[1]:,}".replace(",", " ")))
    if not same:
        sys.exit("bench_torch_pix2pix: the networks are not pixgrad's; nothing timed")
    return {"generator": counts[0], "discriminator": counts[1]}


def main(args):
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(args.device)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    tf32 = args.tf32 == "on"
    if device.type == "cuda":
        # Plain FP32 (off) is the arithmetic of pixgrad's kernels and its cuDNN
        # yardstick; on is PyTorch's default for cuDNN convolutions.
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cudnn.benchmark = True
        name = torch.cuda.get_device_name(device)
    else:
        name = f"cpu, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__} on {name}; TF32 {args.tf32}; {args.warmup} warm-up + {args.iterations} timed "
          "steps (median)")
    parameters = check_parameter_counts(args.preset)
    print("RSS MiB: the process's peak resident memory so far (ru_maxrss; it covers every configuration above)")
    print(f"{'mode':<20} {'batch':>5} {'s/iter':>10} {'iter/s':>8} {'images/s':>9} {'RSS MiB':>9}")

    records = []
    for mode in args.modes.split(","):
        for batch in sorted(int(b) for b in args.batch_sizes.split(",")):
            record = {"framework": "pytorch", "torch": torch.__version__, "device": args.device,
                      "device_name": name, "preset": args.preset, "parameters": parameters, "mode": mode,
                      "tf32": tf32 and device.type == "cuda", "batch": batch, "size": args.size,
                      "iterations": args.iterations, "warmup": args.warmup}
            try:
                ran, seconds = MODES[mode](Config(args.preset, device, batch, args.size, args.warmup,
                                                  args.iterations))
                record.update(mode=ran, status="ok", seconds_per_iteration=seconds,
                              images_per_second=batch / seconds)
                rss = peak_rss_mib()
                print(f"{ran:<20} {batch:>5} {seconds:>10.4f} {1 / seconds:>8.2f} {batch / seconds:>9.2f} "
                      + (f"{rss:>9.0f}" if rss is not None else f"{'-':>9}"))
            except Exception as error:  # noqa: BLE001 - reported, not fatal
                reason = f"{type(error).__name__}: {error}".splitlines()[0][:300]
                record.update(status="unavailable", reason=reason)
                rss = peak_rss_mib()
                print(f"{mode:<20} {batch:>5} unavailable: {reason}")
            record.update(peak_rss_mib=rss, peak_rss_scope="process_so_far" if rss is not None else None)
            sys.stdout.flush()
            records.append(record)
            if args.json:  # after every configuration, so that a run cut short keeps what it measured
                with open(args.json, "w") as out:
                    json.dump(records, out, indent=2)
                    out.write("\n")
            if device.type == "cuda":
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main(ARGS)
