#!/usr/bin/env python3
"""Moves paper-preset pix2pix generators between pixgrad and the PyTorch
reference (junyanz/pytorch-CycleGAN-and-pix2pix).

  to-torch    pixgrad checkpoint (train_pix2pix's checkpoint.safetensors)
              -> the reference UnetGenerator's state_dict (.pth, as the
              reference's latest_net_G.pth, or .safetensors), loadable with
              UnetGenerator(input_nc, output_nc, num_downs, ngf,
              norm_layer, use_dropout).load_state_dict(...).
  to-pixgrad  a reference UnetGenerator state_dict (.pth or .safetensors;
              optionally its NLayerDiscriminator with --discriminator)
              -> a pixgrad checkpoint that pix2pix_translate reads.
  check       converts a pixgrad checkpoint both ways and compares
              pix2pix_translate's output with the reference model's on the
              same images (see docs/parity.md).

Names: pixgrad level i (0 = outermost) is the reference's i-th nested
UnetSkipConnectionBlock; tools/reference/reference_models.py holds the
mapping (paper_unet_paths) and the reference's module tree (PaperUnet).

A pixgrad checkpoint also carries training metadata; to-pixgrad writes
"pixgrad.format": "pix2pix-checkpoint-1", the options (config) and a
position (state) of iteration 0. The reference's .pth files hold no
optimiser state, so with --discriminator the checkpoint gets Adam moments of
zero and step counts of 0 (train_pix2pix --resume then starts a fresh run
from these weights); without it the checkpoint holds G only, which
pix2pix_translate needs, and --resume refuses it.
"""

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np
import torch

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_models as rm  # noqa: E402
from make_fixtures import save_safetensors  # noqa: E402

FORMAT = "pix2pix-checkpoint-1"


def read_tensors(path):
    """(tensors, metadata) from .safetensors, or a state_dict saved with torch.save."""
    if path.endswith(".safetensors"):
        from safetensors import safe_open
        with safe_open(path, "pt") as file:
            return {key: file.get_tensor(key) for key in file.keys()}, file.metadata() or {}
    state = torch.load(path, map_location="cpu", weights_only=True)
    if hasattr(state, "state_dict"):
        state = state.state_dict()
    return dict(state), {}


def write_torch(path, state):
    if path.endswith(".safetensors"):
        from safetensors.torch import save_file
        save_file(state, path)
    else:
        torch.save(state, path)


# ------------------------------------------------------------ to torch ----

def checkpoint_config(metadata, path):
    if metadata.get("pixgrad.format") != FORMAT:
        sys.exit(f"{path}: not a pixgrad pix2pix checkpoint (metadata 'pixgrad.format' is "
                 f"{metadata.get('pixgrad.format')!r})")
    config = json.loads(metadata["config"])
    if config.get("preset", "paper") != "paper":
        sys.exit(f"{path}: a {config['preset']} checkpoint; only the paper preset has a PyTorch reference model")
    return config


def generator_shape(config):
    """(input_nc, output_nc, num_downs, ngf, norm) of a pixgrad config."""
    return (12 if config.get("format") == "cmp" else 3, 3, config.get("num_downs") or 8, config.get("ngf", 64),
            config.get("norm", "batch"))


def discriminator_to_torch(tensors, config, iteration=0):
    """The reference NLayerDiscriminator state_dict for pixgrad's "D.*" tensors."""
    if config.get("discriminator", "patch") != "patch":
        sys.exit("only the n-layer PatchGAN discriminator is converted")
    n_layers, norm = config.get("n_layers", 3), config.get("norm", "batch")
    discriminator = {k[2:]: v for k, v in tensors.items() if k.startswith("D.")}
    state = {}
    for pixgrad_name, torch_name in rm.paper_patchgan_paths(n_layers):
        for field in ("weight", "bias", "running_mean", "running_var"):
            key = f"{pixgrad_name}.{field}"
            if key in discriminator:
                state[f"{torch_name}.{field}"] = discriminator.pop(key).to(torch.float32)
        if f"{torch_name}.running_mean" in state:
            state[f"{torch_name}.num_batches_tracked"] = torch.tensor(2 * iteration, dtype=torch.int64)
    if discriminator:
        sys.exit(f"unexpected discriminator tensors: {sorted(discriminator)[:5]}")
    input_nc, _, _, _, _ = generator_shape(config)
    rm.PaperPatchGan(input_nc + 3, config.get("ndf", 64), n_layers, norm=norm).load_state_dict(state, strict=True)
    return state


def pixgrad_to_torch(tensors, config, iteration=0):
    """The reference UnetGenerator state_dict for pixgrad's "G.*" tensors."""
    input_nc, output_nc, num_downs, ngf, norm = generator_shape(config)
    if norm not in ("batch", "instance"):
        sys.exit(f"norm {norm!r}: the reference UnetGenerator has no such norm layer")
    generator = {k[2:]: v for k, v in tensors.items() if k.startswith("G.")}
    state = {}
    for pixgrad_name, torch_name in rm.paper_unet_paths(num_downs):
        for field in ("weight", "bias", "running_mean", "running_var"):
            key = f"{pixgrad_name}.{field}"
            if key in generator:
                state[f"{torch_name}.{field}"] = generator.pop(key).to(torch.float32)
        if f"{torch_name}.running_mean" in state:
            state[f"{torch_name}.num_batches_tracked"] = torch.tensor(iteration, dtype=torch.int64)
    if generator:
        sys.exit(f"unexpected generator tensors: {sorted(generator)[:5]}")
    model = rm.PaperUnet(input_nc, output_nc, num_downs, ngf, norm=norm)
    model.load_state_dict(state, strict=True)  # shapes and names, as the reference would load it
    return state, model


# ---------------------------------------------------------- to pixgrad ----

def nested_depth(state):
    """num_downs of a reference UnetGenerator state_dict: 1 + the nested blocks."""
    prefix, depth = "model.model.1", 1
    while any(key.startswith(prefix + ".model.") for key in state):
        prefix, depth = prefix + ".model.3", depth + 1
    return depth


def torch_to_pixgrad(state):
    """(the generator's tensors under pixgrad's names, without "G.";
    (input_nc, output_nc, num_downs, ngf, norm)) for a reference state_dict."""
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    num_downs = nested_depth(state)
    ngf, input_nc = state["model.model.0.weight"].shape[:2]
    output_nc = state["model.model.3.weight"].shape[1]
    norm = "batch" if any(k.endswith("running_mean") for k in state) else "instance"
    model = rm.PaperUnet(input_nc, output_nc, num_downs, ngf, norm=norm)
    model.load_state_dict({**model.state_dict(), **state}, strict=True)
    missing = set(k for k in model.state_dict() if not k.endswith("num_batches_tracked")) - set(state)
    if missing:
        sys.exit(f"the state_dict lacks {sorted(missing)[:5]} of a {num_downs}-level UnetGenerator")
    pairs = rm.mapping(model, rm.paper_unet_paths(num_downs))
    return rm.state_dict(pairs), (int(input_nc), int(output_nc), num_downs, int(ngf), norm)


def discriminator_to_pixgrad(state, norm):
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    convs = sorted(int(k.split(".")[1]) for k in state if k.endswith(".weight") and state[k].dim() == 4)
    n_layers = len(convs) - 2
    ndf, input_nc = state["model.0.weight"].shape[:2]
    model = rm.PaperPatchGan(input_nc, ndf, n_layers, norm=norm)
    model.load_state_dict({**model.state_dict(), **state}, strict=True)
    pairs = rm.mapping(model, rm.paper_patchgan_paths(n_layers))
    return rm.state_dict(pairs), int(ndf), n_layers


def zero_adam_state(tensors, prefix):
    """Adam state as pixgrad's Optimizer::state_dict writes it, for a fresh optimiser."""
    out = {}
    for i, tensor in enumerate(tensors):
        out[f"{prefix}{i}.step"] = np.array(0.0, dtype=np.float64)
        out[f"{prefix}{i}.exp_avg"] = np.zeros(tuple(tensor.shape), dtype=np.float32)
        out[f"{prefix}{i}.exp_avg_sq"] = np.zeros(tuple(tensor.shape), dtype=np.float32)
    return out


def write_pixgrad(path, generator, shape, args, discriminator=None):
    input_nc, output_nc, num_downs, ngf, norm = shape
    if input_nc not in (3, 12) or output_nc != 3:
        sys.exit(f"pixgrad checkpoints hold 3-channel (photos) or 12-channel (CMP labels) input and 3-channel output "
                 f"generators, not {input_nc} -> {output_nc}")
    config = dict(preset="paper", format="cmp" if input_nc == 12 else "aligned", direction=args.direction, ngf=ngf,
                  num_downs=num_downs, norm=norm, no_dropout=args.no_dropout, crop_size=args.crop_size,
                  load_size=max(args.load_size, args.crop_size), dataset=args.dataset, seed=args.seed)
    tensors = {"G." + k: v.detach().to(torch.float32).numpy() for k, v in generator.items()}
    if discriminator is not None:
        d_state, ndf, n_layers = discriminator
        config.update(ndf=ndf, n_layers=n_layers)
        tensors.update({"D." + k: v.detach().to(torch.float32).numpy() for k, v in d_state.items()})
        # Parameter order = registration order = the order of the mapping (not the sorted keys).
        g_model = rm.PaperUnet(input_nc, output_nc, num_downs, ngf, norm=norm)
        g_params = rm.named_parameters(rm.mapping(g_model, rm.paper_unet_paths(num_downs)))
        d_model = rm.PaperPatchGan(input_nc + output_nc, ndf, n_layers, norm=norm)
        d_params = rm.named_parameters(rm.mapping(d_model, rm.paper_patchgan_paths(n_layers)))
        tensors.update(zero_adam_state([p for _, p in g_params], "optimizer_G."))
        tensors.update(zero_adam_state([p for _, p in d_params], "optimizer_D."))
    # The position of a run that has not started: the trainer's initial dropout stream.
    state = dict(iteration=0, epoch=0, batches_done=0, rng_seed=args.seed ^ 0x5DEECE66D, rng_offset=0)
    metadata = {"pixgrad.format": FORMAT, "config": json.dumps(config, sort_keys=True),
                "state": json.dumps(state, sort_keys=True)}
    save_safetensors(path, tensors, metadata)


# --------------------------------------------------------------- check ----

def read_png(path):
    """An 8-bit, non-interlaced grey/RGB/RGBA PNG (what pix2pix_translate writes) as [H, W, 3] uint8."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        sys.exit(f"{path}: not a PNG")
    position, compressed = 8, b""
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            compressed += body
        position += 12 + length
    channels = {0: 1, 2: 3, 6: 4}.get(color)
    if depth != 8 or interlace or channels is None:
        sys.exit(f"{path}: only 8-bit non-interlaced grey/RGB/RGBA PNGs are read here")
    raw, stride = zlib.decompress(compressed), width * channels
    rows, previous = [], bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):  # undo the PNG row filter
            left = line[i - channels] if i >= channels else 0
            up, up_left = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - up_left
                nearest = min((abs(p - left), 0, left), (abs(p - up), 1, up), (abs(p - up_left), 2, up_left))[2]
                line[i] = (line[i] + nearest) & 255
        rows.append(bytes(line))
        previous = line
    image = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(height, width, channels)
    return np.repeat(image, 3, axis=2) if channels == 1 else image[:, :, :3]


def write_png(path, image):
    """[H, W, 3] uint8 as an RGB PNG (no filtering)."""
    height, width, _ = image.shape
    raw = b"".join(b"\x00" + image[y].tobytes() for y in range(height))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    with open(path, "wb") as file:
        file.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) +
                   chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def synthetic_images(folder, size, count=4, seed=0):
    """Smooth random RGB images (bilinear upsampling of 8x8 noise), for checks without a dataset."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        coarse = torch.from_numpy(rng.uniform(0, 255, (1, 3, 8, 8)))
        image = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
        write_png(os.path.join(folder, f"synthetic{i}.png"),
                  image[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy())


def to_levels(output):
    """pixgrad's tensor_to_image: round((v + 1) * 127.5), clamped to [0, 255]."""
    value = (output.transpose(1, 2, 0) + 1.0) * 127.5
    return np.where(value > 0, np.floor(np.minimum(value, 255.0) + 0.5), 0).astype(np.int64)


def translate(binary, checkpoint, images, output):
    subprocess.run([binary, "--checkpoint", checkpoint, "--input", images, "--output", output, "--eval",
                    "--device", "cpu"], check=True, stdout=subprocess.DEVNULL)


def check(args):
    tensors, metadata = read_tensors(args.checkpoint)
    config = checkpoint_config(metadata, args.checkpoint)
    state, model = pixgrad_to_torch(tensors, config)
    model = model.double().eval()  # --eval: running statistics, no dropout
    size = config["crop_size"]
    with tempfile.TemporaryDirectory() as work:
        if not args.images:
            args.images = os.path.join(work, "inputs")
            synthetic_images(args.images, size)
        names = sorted(f for f in os.listdir(args.images) if f.endswith(".png"))
        # pixgrad -> torch: pix2pix_translate against the reference model.
        translate(args.translate, args.checkpoint, args.images, os.path.join(work, "pixgrad"))
        differences = []
        for name in names:
            image = read_png(os.path.join(args.images, name))
            if image.shape[:2] != (size, size):
                sys.exit(f"{name}: {image.shape[1]}x{image.shape[0]}; check needs {size}x{size} PNGs (no resizing)")
            x = torch.from_numpy(image.transpose(2, 0, 1).astype(np.float64) / 127.5 - 1.0)[None]
            with torch.no_grad():
                reference = to_levels(model(x)[0].numpy())
            pixgrad = read_png(os.path.join(work, "pixgrad", name)).astype(np.int64)
            differences.append(np.abs(pixgrad - reference).ravel())
        differences = np.concatenate(differences)
        worst, differing, total = int(differences.max()), int((differences > 0).sum()), differences.size
        print(f"pixgrad -> torch: {len(names)} images, {total} values: max |pixgrad - torch| = {worst} "
              f"level(s), {differing} values differ ({differing / total:.2e})")

        # torch -> pixgrad: the reference state_dict back into a checkpoint.
        back, shape = torch_to_pixgrad(state)
        args.crop_size, args.load_size = size, config.get("load_size", size)
        path = os.path.join(work, "back.safetensors")
        write_pixgrad(path, back, shape, args)
        round_trip, _ = read_tensors(path)
        mismatched = [k for k, v in tensors.items() if k.startswith("G.") and
                      not torch.equal(v.to(torch.float32), round_trip[k])]
        print(f"torch -> pixgrad: {len(back)} generator tensors, {len(mismatched)} differ from the original "
              "bit for bit")
        translate(args.translate, path, args.images, os.path.join(work, "back"))
        same = sum(np.array_equal(read_png(os.path.join(work, "back", n)), read_png(os.path.join(work, "pixgrad", n)))
                   for n in names)
        print(f"torch -> pixgrad: pix2pix_translate output identical for {same} of {len(names)} images")
        if worst > 1 or mismatched or same != len(names):
            sys.exit("check FAILED")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    to_torch = commands.add_parser("to-torch", help="pixgrad checkpoint -> reference UnetGenerator state_dict")
    to_torch.add_argument("checkpoint")
    to_torch.add_argument("output", help="latest_net_G.pth (torch.save) or .safetensors")
    to_torch.add_argument("--discriminator-output", help="also write D, e.g. latest_net_D.pth")
    to_pixgrad = commands.add_parser("to-pixgrad", help="reference state_dict -> pixgrad checkpoint")
    to_pixgrad.add_argument("generator", help="the reference's latest_net_G.pth (or .safetensors)")
    to_pixgrad.add_argument("output", help="a pixgrad checkpoint (.safetensors)")
    to_pixgrad.add_argument("--discriminator", help="latest_net_D.pth: include D (and fresh Adam state)")
    check_command = commands.add_parser("check", help="convert both ways and compare the generators' outputs")
    check_command.add_argument("checkpoint")
    check_command.add_argument("--images", help="a folder of crop_size x crop_size PNGs (default: 4 synthetic ones)")
    check_command.add_argument("--translate", default="build/apps/pix2pix_translate")
    for command in (to_pixgrad, check_command):
        command.add_argument("--crop-size", type=int, default=256, help="the training resolution")
        command.add_argument("--load-size", type=int, default=286)
        command.add_argument("--direction", default="AtoB", choices=["AtoB", "BtoA"])
        command.add_argument("--no-dropout", action="store_true", help="the model was trained without dropout")
        command.add_argument("--dataset", default="", help="recorded in the options (for --resume)")
        command.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    if args.command == "to-torch":
        tensors, metadata = read_tensors(args.checkpoint)
        config = checkpoint_config(metadata, args.checkpoint)
        iteration = json.loads(metadata["state"]).get("iteration", 0)
        state, _ = pixgrad_to_torch(tensors, config, iteration)
        write_torch(args.output, state)
        if args.discriminator_output:
            write_torch(args.discriminator_output, discriminator_to_torch(tensors, config, iteration))
        input_nc, output_nc, num_downs, ngf, norm = generator_shape(config)
        print(f"{args.output}: UnetGenerator({input_nc}, {output_nc}, num_downs={num_downs}, ngf={ngf}, "
              f"norm={norm}, use_dropout={not config.get('no_dropout', False)}), {len(state)} tensors")
    elif args.command == "to-pixgrad":
        generator, shape = torch_to_pixgrad(read_tensors(args.generator)[0])
        discriminator = None
        if args.discriminator:
            discriminator = discriminator_to_pixgrad(read_tensors(args.discriminator)[0], shape[4])
        write_pixgrad(args.output, generator, shape, args, discriminator)
        print(f"{args.output}: paper preset, num_downs {shape[2]}, ngf {shape[3]}, norm {shape[4]}, "
              f"{'G, D and fresh Adam state' if discriminator else 'G only (for pix2pix_translate)'}")
    else:
        check(args)


if __name__ == "__main__":
    main()
