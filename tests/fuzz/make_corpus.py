#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/.

Small, valid inputs of every kind each reader accepts, so that the fuzzer
starts from the formats' real structure: safetensors files (F32 and F64,
metadata, an empty tensor), checkpoint metadata (options and position),
JPEGs (colour and grey, baseline and progressive, 4:4:4 and 4:2:0, with
restart markers) and PNGs (grey, grey with alpha, RGB, RGBA, palette at 1,
2, 4 and 8 bits, 16-bit, interlaced), and label PNGs (palette and grey).
Deterministic; needs Pillow (pip install pillow). The corpus is committed;
rerun this only to change the seeds.
"""

import io
import json
import os
import random
import struct
import sys

from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    folder = os.path.join(HERE, "corpus", target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as out:
        out.write(data)


def safetensors_file(tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    for name, (dtype, shape, values) in tensors.items():
        fmt = "<%d%s" % (len(values), "f" if dtype == "F32" else "d")
        blob = struct.pack(fmt, *values)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def picture(width, height, mode, seed):
    rng = random.Random(seed)
    image = Image.new("RGB", (width, height))
    image.putdata([(rng.randrange(256), (x * 37) % 256, (y * 53) % 256)
                   for y in range(height) for x in range(width)])
    return image.convert(mode)


def encoded(image, fmt, **options):
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def main():
    write("safetensors", "two_tensors", safetensors_file(
        {"a": ("F32", [2, 3], [0.5, -1, 2, 3, 4, 5]), "b": ("F64", [2], [1e-300, -7.25])}, {"key": "value"}))
    write("safetensors", "empty_tensor", safetensors_file({"e": ("F32", [0, 4], []), "s": ("F32", [], [1.5])}))
    write("safetensors", "metadata_only", safetensors_file({}, {"pixgrad.format": "pix2pix-checkpoint-1"}))

    config = {"format": "aligned", "direction": "BtoA", "train_split": "train", "load_size": 286, "crop_size": 256,
              "no_flip": False, "preset": "paper", "ngf": 64, "ndf": 64, "num_downs": 0, "n_layers": 3,
              "discriminator": "patch", "norm": "batch", "no_dropout": False, "batch_size": 1, "epochs": 200,
              "decay_epochs": -1, "schedule": "", "lr": 0.0002, "beta1": 0.5, "lambda_l1": 100.0, "seed": 0,
              "dataset": "data/facades", "test_split": "test", "workers": 2, "max_iterations": 0, "device": "auto",
              "conv_impl": "", "tf32": False, "output": "out/facades", "log_interval": 100,
              "snapshot_interval": 1000, "eval_interval": 0, "preview_count": 5}
    state = {"iteration": 400, "epoch": 1, "batches_done": 0, "rng_seed": 1234, "rng_offset": 99}
    write("checkpoint", "paper", (json.dumps(config) + "\n" + json.dumps(state)).encode())
    write("checkpoint", "chainer", (json.dumps(dict(config, preset="chainer", format="cmp", schedule="constant"))
                                    + "\n" + json.dumps(dict(state, iteration=0, epoch=0))).encode())

    colour, grey = picture(24, 16, "RGB", 1), picture(17, 9, "L", 2)
    write("image", "baseline_420.jpg", encoded(colour, "JPEG", quality=80))
    write("image", "baseline_444.jpg", encoded(colour, "JPEG", quality=90, subsampling=0))
    write("image", "progressive.jpg", encoded(colour, "JPEG", quality=75, progressive=True))
    write("image", "grey.jpg", encoded(grey, "JPEG", quality=85))
    write("image", "restarts.jpg", encoded(picture(40, 24, "RGB", 3), "JPEG", quality=70, restart_marker_blocks=1))
    write("image", "grey.png", encoded(grey, "PNG"))
    write("image", "grey_alpha.png", encoded(picture(9, 7, "LA", 4), "PNG"))
    write("image", "rgb.png", encoded(colour, "PNG"))
    write("image", "rgba.png", encoded(picture(8, 8, "RGBA", 5), "PNG"))
    write("image", "grey16.png", encoded(picture(6, 5, "I;16", 6), "PNG"))
    write("image", "interlaced.png", encoded(colour, "PNG", interlace=1))
    for bits in (1, 2, 4, 8):
        palette = picture(11, 6, "RGB", 7).quantize(colors=2 ** bits)
        write("image", "palette%d.png" % bits, encoded(palette, "PNG", bits=bits))

    labels = Image.new("P", (12, 10))
    labels.putpalette([channel for i in range(13) for channel in ((i * 20) % 256, (i * 45) % 256, (i * 70) % 256)])
    labels.putdata([1 + (x + y) % 12 for y in range(10) for x in range(12)])
    write("label_image", "palette.png", encoded(labels, "PNG"))
    write("label_image", "palette4.png", encoded(labels, "PNG", bits=4))
    write("label_image", "grey.png", encoded(labels.convert("L"), "PNG"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
