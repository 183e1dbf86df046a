#!/usr/bin/env python3
"""Writes tests/fixtures/penalties.safetensors: PyTorch's values for the two
gradient penalties of models/penalties.h, which tests/test_gan_penalties.cpp
compares pixgrad against (in float64, so that the comparison sees the
formulas and the double backward, not rounding).

    .venv-torch/bin/python tools/reference/make_penalty_fixtures.py   # from the repository root

Deterministic (fixed seeds, one thread); inputs are drawn in float32 and
every computation runs in float64 on exactly those values.

The critic, small and without normalisation, as gradient penalties need:
    conv 3->8 4x4/2 pad 1, leaky_relu 0.2, conv 8->16 4x4/2 pad 1,
    leaky_relu 0.2, conv 16->1 3x3/1 pad 1 (biases everywhere)
on inputs [2, 3, 16, 16]; its output is a 4x4 map of scores per sample.
Keys:
    D.<layer>.weight, D.<layer>.bias     the critic's parameters
    real, fake                           two batches
    wgangp.alpha                         one mixing weight per sample
    wgangp.penalty                       the WGAN-GP term (Gulrajani et al.
        2017, as in the pix2pix reference's cal_gradient_penalty): at
        x = alpha real + (1 - alpha) fake, g = d sum(D(x)) / dx,
        10 * mean_i (|g_i|_2 - 1)^2
    wgangp.grad.<param>                  d wgangp.penalty / d param (0 for the
        last bias, which no input gradient depends on)
    r1.penalty                           the R1 term (Mescheder et al. 2018):
        g = d sum(D(real)) / d real, 10 / 2 * mean_i |g_i|^2
    r1.grad.<param>                      d r1.penalty / d param
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import FIXTURES, generator, save_safetensors, uniform  # noqa: E402

LAYERS = [("conv1", 3, 8, 4, 2, 1), ("conv2", 8, 16, 4, 2, 1), ("conv3", 16, 1, 3, 1, 1)]
GP_WEIGHT = 10.0
R1_GAMMA = 10.0


def critic(params, x):
    for index, (name, _, _, _, stride, padding) in enumerate(LAYERS):
        x = F.conv2d(x, params[name + ".weight"], params[name + ".bias"], stride=stride, padding=padding)
        if index + 1 < len(LAYERS):
            x = F.leaky_relu(x, 0.2)
    return x


def input_gradient(params, x):
    scores = critic(params, x)
    return torch.autograd.grad(scores.sum(), x, create_graph=True)[0].flatten(1)


def parameter_gradients(penalty, params):
    """d penalty / d each parameter; zeros for the last layer's bias, which
    shifts every score alike and so never reaches an input gradient."""
    grads = torch.autograd.grad(penalty, list(params.values()), allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for g, p in zip(grads, params.values())]


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    gen = generator(3001)
    stored = {}
    for name, cin, cout, k, _, _ in LAYERS:
        bound = 1 / (cin * k * k) ** 0.5
        stored[f"D.{name}.weight"] = uniform((cout, cin, k, k), -bound, bound, gen)
        stored[f"D.{name}.bias"] = uniform((cout,), -bound, bound, gen)
    stored["real"] = uniform((2, 3, 16, 16), -1, 1, gen)
    stored["fake"] = uniform((2, 3, 16, 16), -1, 1, gen)
    stored["wgangp.alpha"] = uniform((2,), 0, 1, gen)
    f64 = {key: value.to(torch.float64) for key, value in stored.items()}
    params = {key[2:]: value.clone().requires_grad_(True) for key, value in f64.items() if key.startswith("D.")}
    out = {key: value.numpy() for key, value in f64.items()}

    alpha = f64["wgangp.alpha"].view(-1, 1, 1, 1)
    mixed = (alpha * f64["real"] + (1 - alpha) * f64["fake"]).requires_grad_(True)
    g = input_gradient(params, mixed)
    wgangp = GP_WEIGHT * ((g.norm(2, dim=1) - 1) ** 2).mean()
    grads = parameter_gradients(wgangp, params)
    out["wgangp.penalty"] = wgangp.detach().reshape(()).numpy()
    out.update({"wgangp.grad." + key: grad.numpy() for key, grad in zip(params, grads)})

    real = f64["real"].clone().requires_grad_(True)
    g = input_gradient(params, real)
    r1 = R1_GAMMA / 2 * (g ** 2).sum(dim=1).mean()
    grads = parameter_gradients(r1, params)
    out["r1.penalty"] = r1.detach().reshape(()).numpy()
    out.update({"r1.grad." + key: grad.numpy() for key, grad in zip(params, grads)})

    path = os.path.join(FIXTURES, "penalties.safetensors")
    save_safetensors(path, out, {"generator": "tools/reference/make_penalty_fixtures.py"})
    print(f"{path}: {len(out)} tensors, wgangp {wgangp.item():.6f}, r1 {r1.item():.6f}")


if __name__ == "__main__":
    main()
