"""PyTorch re-implementations of the two pix2pix references that pixgrad's
presets follow, and the name mapping between their modules and pixgrad's
state-dict names. Shared by make_fixtures.py and convert_weights.py.

paper   -- junyanz/pytorch-CycleGAN-and-pix2pix (networks.py): UnetGenerator
           built from nested UnetSkipConnectionBlocks, and NLayerDiscriminator.
           The module tree (and so the state_dict keys "model.model.1.model.3...")
           is the reference's, so its checkpoints load into PaperUnet unchanged.
chainer -- pfnet-research/chainer-pix2pix (net.py): Encoder / Decoder /
           Discriminator built from CBR blocks (conv - BN - (dropout) - act).

A "mapping" is a list of (pixgrad module name, torch module) pairs in the
order in which pixgrad's model registers its modules. pixgrad lists the
parameters of a module as weight then bias, module after module, so the
mapping order is also the parameter order of pixgrad's optimiser state
("optimizer_G.<i>.exp_avg" is the i-th parameter of this list).
"""

import torch
from torch import nn


def level_channels(ngf, level):
    """pixgrad's UnetGenerator::level_channels: ngf, 2 ngf, 4 ngf, then 8 ngf."""
    return ngf * min(2 ** min(level, 3), 8)


# ---------------------------------------------------------------- paper ----

def paper_norm_layer(norm, channels):
    """networks.get_norm_layer: BatchNorm2d (affine, running statistics) or
    InstanceNorm2d (neither)."""
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    raise ValueError(f"norm must be batch or instance, not {norm!r}")


class UnetBlock(nn.Module):
    """One level of the reference U-Net (UnetSkipConnectionBlock). Convs have
    a bias only with instance norm, except the outermost up-conv, which
    always has one. Module indices inside `model` are the reference's:
        outermost  [down conv, submodule, ReLU, up conv, Tanh]
        middle     [LeakyReLU, down conv, norm, submodule, ReLU, up conv, norm(, Dropout)]
        innermost  [LeakyReLU, down conv, ReLU, up conv, norm]
    The LeakyReLU and ReLU are in place, as in the reference: the LeakyReLU
    overwrites this block's input, so the skip concatenation below carries
    LeakyReLU(x), not x. (The parent applies ReLU to the concatenation before
    anything else reads it, and ReLU(LeakyReLU(x)) = ReLU(x), so the outputs
    and gradients would be the same either way.)"""

    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False, innermost=False,
                 norm="batch", use_dropout=False):
        super().__init__()
        self.outermost = outermost
        use_bias = norm == "instance"
        input_nc = outer_nc if input_nc is None else input_nc
        down_conv = nn.Conv2d(input_nc, inner_nc, 4, 2, 1, bias=use_bias)
        if outermost:
            layers = [down_conv, submodule, nn.ReLU(True), nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, 2, 1),
                      nn.Tanh()]
        elif innermost:
            layers = [nn.LeakyReLU(0.2, True), down_conv, nn.ReLU(True),
                      nn.ConvTranspose2d(inner_nc, outer_nc, 4, 2, 1, bias=use_bias), paper_norm_layer(norm, outer_nc)]
        else:
            layers = [nn.LeakyReLU(0.2, True), down_conv, paper_norm_layer(norm, inner_nc), submodule, nn.ReLU(True),
                      nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, 2, 1, bias=use_bias),
                      paper_norm_layer(norm, outer_nc)]
            if use_dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class PaperUnet(nn.Module):
    """The reference UnetGenerator(input_nc, output_nc, num_downs, ngf, norm_layer, use_dropout)."""

    def __init__(self, input_nc, output_nc, num_downs, ngf, use_dropout=False, norm="batch"):
        super().__init__()
        block = UnetBlock(ngf * 8, ngf * 8, innermost=True, norm=norm)
        for _ in range(num_downs - 5):
            block = UnetBlock(ngf * 8, ngf * 8, submodule=block, norm=norm, use_dropout=use_dropout)
        block = UnetBlock(ngf * 4, ngf * 8, submodule=block, norm=norm)
        block = UnetBlock(ngf * 2, ngf * 4, submodule=block, norm=norm)
        block = UnetBlock(ngf, ngf * 2, submodule=block, norm=norm)
        self.model = UnetBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True, norm=norm)

    def forward(self, x):
        return self.model(x)


def paper_unet_paths(num_downs):
    """(pixgrad name, reference state-dict prefix) for every module of the
    paper U-Net with parameters, in pixgrad's registration order: down0,
    down1, down1_norm, ..., down{n-1}, up0, up1, up1_norm, ..., up{n-1}_norm.
    Level i of pixgrad is the i-th nested block, counted from the outside."""
    n = num_downs
    blocks = ["model"]
    for i in range(1, n):
        blocks.append(blocks[-1] + ".model." + ("1" if i == 1 else "3"))
    down, up = [], []
    for i, block in enumerate(blocks):
        seq = block + ".model."
        if i == 0:
            down.append(("down0", seq + "0"))
            up.append(("up0", seq + "3"))
        elif i == n - 1:
            down.append((f"down{i}", seq + "1"))
            up += [(f"up{i}", seq + "3"), (f"up{i}_norm", seq + "4")]
        else:
            down += [(f"down{i}", seq + "1"), (f"down{i}_norm", seq + "2")]
            up += [(f"up{i}", seq + "5"), (f"up{i}_norm", seq + "6")]
    return down + up


class PaperPatchGan(nn.Module):
    """The reference NLayerDiscriminator(input_nc, ndf, n_layers, norm_layer),
    applied to cat(condition, image) as pix2pix_model.py does."""

    def __init__(self, input_nc, ndf, n_layers=3, norm="batch"):
        super().__init__()
        layers = [nn.Conv2d(input_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        width = ndf
        for n in range(1, n_layers + 1):
            nxt = ndf * min(2 ** n, 8)
            stride = 1 if n == n_layers else 2
            layers += [nn.Conv2d(width, nxt, 4, stride, 1, bias=norm == "instance"), paper_norm_layer(norm, nxt),
                       nn.LeakyReLU(0.2, True)]
            width = nxt
        layers.append(nn.Conv2d(width, 1, 4, 1, 1))
        self.model = nn.Sequential(*layers)

    def forward(self, condition, image):
        return self.model(torch.cat([condition, image], 1))


def paper_patchgan_paths(n_layers):
    paths = [("layer0", "model.0")]
    for n in range(1, n_layers + 1):
        paths += [(f"layer{n}", f"model.{2 + 3 * (n - 1)}"), (f"layer{n}_norm", f"model.{3 + 3 * (n - 1)}")]
    paths.append((f"layer{n_layers + 1}", f"model.{2 + 3 * n_layers}"))
    return paths


# -------------------------------------------------------------- chainer ----

CHAINER_BN_EPS = 2e-5  # chainer.links.BatchNormalization's default; its decay 0.9 is momentum 0.1


def chainer_leaky_relu(x):
    return nn.functional.leaky_relu(x, 0.2)  # chainer.functions.leaky_relu's default slope


class CBR(nn.Module):
    """net.py's CBR: 4x4 stride-2 (de)convolution with bias, batch norm
    (eps 2e-5, unbiased running variance as Chainer keeps it), optional
    dropout, activation."""

    def __init__(self, ch0, ch1, bn=True, sample="down", activation=torch.relu, dropout=False):
        super().__init__()
        conv = nn.Conv2d if sample == "down" else nn.ConvTranspose2d
        self.c = conv(ch0, ch1, 4, 2, 1)
        self.batchnorm = nn.BatchNorm2d(ch1, eps=CHAINER_BN_EPS, momentum=0.1) if bn else None
        self.activation = activation
        self.dropout = dropout

    def forward(self, x):
        h = self.c(x)
        if self.batchnorm is not None:
            h = self.batchnorm(h)
        if self.dropout:
            h = nn.functional.dropout(h, 0.5, self.training)
        return self.activation(h) if self.activation is not None else h


class ChainerEncoder(nn.Module):
    """Encoder: c0 (3x3 conv) + LeakyReLU, then c1..cN conv-BN-LeakyReLU.
    net.py has N = 7 and widths 64, 128, 256, 512...; here ngf scales them."""

    def __init__(self, in_ch, ngf, num_downs):
        super().__init__()
        self.c0 = nn.Conv2d(in_ch, level_channels(ngf, 0), 3, 1, 1)
        self.downs = nn.ModuleList(
            CBR(level_channels(ngf, i - 1), level_channels(ngf, i), activation=chainer_leaky_relu)
            for i in range(1, num_downs + 1))

    def forward(self, x):
        hs = [chainer_leaky_relu(self.c0(x))]
        for block in self.downs:
            hs.append(block(hs[-1]))
        return hs


class ChainerDecoder(nn.Module):
    """Decoder: c0..c(N-1) deconv-BN-(dropout)-ReLU on [h, skip] (upsampled
    features first), then a 3x3 conv with no tanh. Dropout (first three
    levels in net.py) is a constructor switch so fixtures can turn it off."""

    def __init__(self, out_ch, ngf, num_downs, use_dropout=False):
        super().__init__()
        n = num_downs
        ups = []
        for j in range(n):
            in_ch = level_channels(ngf, n) if j == 0 else 2 * level_channels(ngf, n - j)
            ups.append(CBR(in_ch, level_channels(ngf, n - 1 - j), sample="up", dropout=use_dropout and j < 3))
        self.ups = nn.ModuleList(ups)
        self.head = nn.Conv2d(2 * level_channels(ngf, 0), out_ch, 3, 1, 1)

    def forward(self, hs):
        h = self.ups[0](hs[-1])
        for j in range(1, len(self.ups) + 1):
            h = torch.cat([h, hs[-j - 1]], 1)
            h = self.ups[j](h) if j < len(self.ups) else self.head(h)
        return h


class ChainerUnet(nn.Module):
    def __init__(self, in_ch, out_ch, ngf, num_downs, use_dropout=False):
        super().__init__()
        self.enc = ChainerEncoder(in_ch, ngf, num_downs)
        self.dec = ChainerDecoder(out_ch, ngf, num_downs, use_dropout)

    def forward(self, x):
        return self.dec(self.enc(x))


def chainer_unet_paths(num_downs):
    n = num_downs
    paths = [("stem", "enc.c0")]
    for i in range(1, n + 1):
        paths += [(f"down{i}", f"enc.downs.{i - 1}.c"), (f"down{i}_norm", f"enc.downs.{i - 1}.batchnorm")]
    for j in range(n):
        paths += [(f"up{j}", f"dec.ups.{j}.c"), (f"up{j}_norm", f"dec.ups.{j}.batchnorm")]
    paths.append(("head", "dec.head"))
    return paths


class ChainerDiscriminator(nn.Module):
    """net.py's Discriminator: c0_0 (condition) and c0_1 (image) conv +
    LeakyReLU streams of ndf/2 channels, concatenated, c1..c3 conv-BN-
    LeakyReLU, c4 a 3x3 conv."""

    def __init__(self, in_ch, out_ch, ndf):
        super().__init__()
        self.c0_0 = CBR(in_ch, ndf // 2, bn=False, activation=chainer_leaky_relu)
        self.c0_1 = CBR(out_ch, ndf // 2, bn=False, activation=chainer_leaky_relu)
        self.c1 = CBR(ndf, 2 * ndf, activation=chainer_leaky_relu)
        self.c2 = CBR(2 * ndf, 4 * ndf, activation=chainer_leaky_relu)
        self.c3 = CBR(4 * ndf, 8 * ndf, activation=chainer_leaky_relu)
        self.c4 = nn.Conv2d(8 * ndf, 1, 3, 1, 1)

    def forward(self, condition, image):
        h = torch.cat([self.c0_0(condition), self.c0_1(image)], 1)
        return self.c4(self.c3(self.c2(self.c1(h))))


def chainer_discriminator_paths():
    # pixgrad registers the two streams first, then layer0..layer3.
    return [("condition_stream", "c0_0.c"), ("image_stream", "c0_1.c"), ("layer0", "c1.c"),
            ("layer0_norm", "c1.batchnorm"), ("layer1", "c2.c"), ("layer1_norm", "c2.batchnorm"),
            ("layer2", "c3.c"), ("layer2_norm", "c3.batchnorm"), ("layer3", "c4")]


# --------------------------------------------------------------- names ----

def mapping(model, paths):
    """[(pixgrad name, module)] for `paths` = [(pixgrad name, torch path)]."""
    return [(name, model.get_submodule(path)) for name, path in paths]


def named_parameters(pairs):
    """[(pixgrad parameter name, tensor)] in pixgrad's parameter order."""
    out = []
    for name, module in pairs:
        for field in ("weight", "bias"):
            if getattr(module, field, None) is not None:
                out.append((name + "." + field, getattr(module, field)))
    return out


def state_dict(pairs):
    """Parameters and running statistics under pixgrad's names (detached)."""
    state = {name: tensor.detach().clone() for name, tensor in named_parameters(pairs)}
    for name, module in pairs:
        if isinstance(module, nn.BatchNorm2d):
            state[name + ".running_mean"] = module.running_mean.detach().clone()
            state[name + ".running_var"] = module.running_var.detach().clone()
    return state


def load_state_dict(pairs, state):
    """Copies pixgrad-named tensors into the torch modules (strict: every key
    used exactly once, shapes equal)."""
    expected = state_dict(pairs)
    if set(expected) != set(state):
        missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        raise KeyError(f"state dict mismatch: missing {missing[:5]}, unexpected {extra[:5]}")
    with torch.no_grad():
        for name, module in pairs:
            for field in ("weight", "bias", "running_mean", "running_var"):
                target = getattr(module, field, None)
                if target is None or name + "." + field not in state:
                    continue
                source = state[name + "." + field]
                if tuple(source.shape) != tuple(target.shape):
                    raise ValueError(f"{name}.{field}: shape {tuple(source.shape)}, expected {tuple(target.shape)}")
                target.copy_(source.to(target.dtype))
