#!/usr/bin/env python3
"""The pix2pix training step in plain PyTorch, timed like apps/bench_pix2pix.

The yardstick for pixgrad's paper preset: the unet_256 generator with the
reference's structure, the 70x70 PatchGAN (n_layers=3) on cat(x, y),
BCE-with-logits GAN loss + 100 * L1, Adam(2e-4, betas (0.5, 0.999)) for both
networks, and the reference's update order: D on the detached fake with its
loss halved, then G against the updated D with D's parameters frozen.
Written for this comparison from the paper's description; no code of the
pix2pix repository.

Timing: warm-up steps, then the median of timed steps; torch.cuda.Event
pairs around each step on the GPU, time.perf_counter on the CPU. Inputs are
fixed random tensors in [-1, 1] (no data loading), like bench_pix2pix.

Modes:
  eager       plain PyTorch.
  cuda_graph  the whole step (both forward/backward passes and both Adam
              steps, capturable=True) captured once with torch.cuda.graph and
              replayed; if capturing the whole step fails, the generator's
              forward/backward alone through torch.cuda.make_graphed_callables
              (the mode is then reported as cuda_graph_partial).
  compile     torch.compile of both networks (default inductor backend),
              optimizers eager; compilation happens in the warm-up steps.
A mode that cannot run reports "unavailable: <reason>" instead of a time.

Not part of CI: needs PyTorch (tools/gpu_check.sh runs it on the GPU
machine; docs/perf.md has the CPU comparison).
"""

import argparse
import json
import statistics
import sys
import time


MODE_NAMES = ("eager", "cuda_graph", "compile")


def make_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--batch-sizes", default="1,4,16")
    parser.add_argument("--modes", default="eager,cuda_graph,compile")
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
        print(f"would time modes {ARGS.modes} at batch sizes {ARGS.batch_sizes} on {ARGS.device}, TF32 {ARGS.tf32}, "
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


# ---- the training step --------------------------------------------------------


class Pix2Pix:
    def __init__(self, device, capturable=False):
        self.G = UnetGenerator().to(device)
        self.D = PatchDiscriminator().to(device)
        init_weights(self.G)
        init_weights(self.D)
        self.G.train()
        self.D.train()
        kwargs = {"lr": 2e-4, "betas": (0.5, 0.999)}
        if capturable:
            kwargs["capturable"] = True
        self.opt_G = torch.optim.Adam(self.G.parameters(), **kwargs)
        self.opt_D = torch.optim.Adam(self.D.parameters(), **kwargs)
        self.G_forward = self.G
        self.D_forward = self.D

    def set_requires_grad(self, module, flag):
        for p in module.parameters():
            p.requires_grad_(flag)

    def step(self, real_A, real_B, zero_grad=True):
        fake_B = self.G_forward(real_A)
        # D: fake (detached) and real, loss halved.
        self.set_requires_grad(self.D, True)
        if zero_grad:
            self.opt_D.zero_grad(set_to_none=True)
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
        pred_fake = self.D_forward(torch.cat([real_A, fake_B], 1))
        loss_G_GAN = F.binary_cross_entropy_with_logits(pred_fake, torch.ones_like(pred_fake))
        loss_G_L1 = F.l1_loss(fake_B, real_B) * 100.0
        loss_G = loss_G_GAN + loss_G_L1
        loss_G.backward()
        self.opt_G.step()
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


def inputs(batch, size, device):
    generator = torch.Generator().manual_seed(2)
    real_A = (torch.rand(batch, 3, size, size, generator=generator) * 2 - 1).to(device)
    real_B = (torch.rand(batch, 3, size, size, generator=generator) * 2 - 1).to(device)
    return real_A, real_B


def bench_eager(device, batch, size, warmup, iterations):
    torch.manual_seed(1)
    model = Pix2Pix(device)
    real_A, real_B = inputs(batch, size, device)
    return "eager", time_steps(lambda: model.step(real_A, real_B), device, warmup, iterations)


def bench_cuda_graph(device, batch, size, warmup, iterations):
    if device.type != "cuda":
        raise RuntimeError("CUDA graphs need --device cuda")
    try:
        return "cuda_graph", whole_step_graph(device, batch, size, warmup, iterations)
    except Exception as error:  # noqa: BLE001 - any capture failure falls back
        print(f"  cuda_graph: whole-step capture failed ({type(error).__name__}: {error}); "
              "trying the generator alone", file=sys.stderr)
    return "cuda_graph_partial", generator_graph(device, batch, size, warmup, iterations)


def whole_step_graph(device, batch, size, warmup, iterations):
    torch.manual_seed(1)
    model = Pix2Pix(device, capturable=True)
    real_A, real_B = inputs(batch, size, device)
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
    return time_steps(graph.replay, device, warmup, iterations)


def generator_graph(device, batch, size, warmup, iterations):
    torch.manual_seed(1)
    model = Pix2Pix(device)
    real_A, real_B = inputs(batch, size, device)
    model.G_forward = torch.cuda.make_graphed_callables(model.G, (real_A,))
    return time_steps(lambda: model.step(real_A, real_B), device, warmup, iterations)


def bench_compile(device, batch, size, warmup, iterations):
    if not hasattr(torch, "compile"):
        raise RuntimeError("torch.compile is not in this PyTorch")
    torch.manual_seed(1)
    model = Pix2Pix(device)
    model.G_forward = torch.compile(model.G)
    model.D_forward = torch.compile(model.D)
    real_A, real_B = inputs(batch, size, device)
    started = time.perf_counter()
    model.step(real_A, real_B)  # compiles (and recompiles for the frozen-D pass on the next steps)
    print(f"  compile: first step {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return "compile", time_steps(lambda: model.step(real_A, real_B), device, max(warmup, 2), iterations)


MODES = {"eager": bench_eager, "cuda_graph": bench_cuda_graph, "compile": bench_compile}


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
    print(f"{'mode':<20} {'batch':>5} {'s/iter':>10} {'iter/s':>8} {'images/s':>9}")

    records = []
    for mode in args.modes.split(","):
        for batch in sorted(int(b) for b in args.batch_sizes.split(",")):
            record = {"framework": "pytorch", "torch": torch.__version__, "device": args.device,
                      "device_name": name, "mode": mode, "tf32": tf32 and device.type == "cuda", "batch": batch,
                      "size": args.size,
                      "iterations": args.iterations, "warmup": args.warmup}
            try:
                ran, seconds = MODES[mode](device, batch, args.size, args.warmup, args.iterations)
                record.update(mode=ran, status="ok", seconds_per_iteration=seconds,
                              images_per_second=batch / seconds)
                print(f"{ran:<20} {batch:>5} {seconds:>10.4f} {1 / seconds:>8.2f} {batch / seconds:>9.2f}")
            except Exception as error:  # noqa: BLE001 - reported, not fatal
                reason = f"{type(error).__name__}: {error}".splitlines()[0][:300]
                record.update(status="unavailable", reason=reason)
                print(f"{mode:<20} {batch:>5} unavailable: {reason}")
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
