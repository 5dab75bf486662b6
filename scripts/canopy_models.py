"""canopy_models -- the PyTorch side of canopy: ResNet classifiers built in
plain PyTorch (torchvision blocks, fastai-compatible heads; fastai itself is
not needed), loading of PyTorch and fastai weight files, and export to ONNX
with canopy's metadata.

Used by scripts/export-onnx (installed as canopy-export-onnx),
scripts/train-demo-model and the parity tests (tests/model/).

Public names
------------
KAGGLE_LABELS
    The 17 labels of the Kaggle "Planet: Understanding the Amazon from Space"
    competition, alphabetical, in Kaggle's spelling (artisinal_mine).
DEFAULT_MARKERS
    The default deforestation-marker labels (DESIGN.md).
ARCHS
    {"resnet18": ..., "resnet152": ...}: the supported architectures.
HEADS
    "fastai" (fastai v2 vision_learner head: Linear layers without bias),
    "fastai1" (fastai v1 create_cnn head: Linear layers with bias),
    "torchvision" (the plain torchvision ResNet with a new fc layer).
IMAGENET_MEAN, IMAGENET_STD
    Per-channel RGB statistics of ImageNet (what fastai and torchvision
    normalise with).
NIR_MEAN, NIR_STD
    The default statistics of a 4th (near-infrared) channel: the mean of the
    ImageNet RGB values (0.449, 0.226), the usual assumption when a 3-channel
    network is widened to 4 bands. Pass the statistics of your own training
    data when you know them.

build_model(arch, n_classes, in_channels=3, head="fastai", widths=None)
    -> torch.nn.Module (a new model the caller owns, in eval mode).
    head "fastai"/"fastai1": nn.Sequential(body, head) exactly as fastai's
    vision_learner / create_cnn build it, so that a learn.save() state dict
    loads with the same keys: body = the ResNet children up to layer4
    (0.0 conv1, 0.1 bn1, 0.2 relu, 0.3 maxpool, 0.4 .. 0.7 layer1..4), head =
    (1.0 AdaptiveConcatPool2d [max pool, then average pool], 1.1 Flatten,
    1.2 BatchNorm1d(2*nf), 1.3 Dropout(0.25), 1.4 Linear(2*nf, 512), 1.5 ReLU,
    1.6 BatchNorm1d(512), 1.7 Dropout(0.5), 1.8 Linear(512, n_classes)).
    head "torchvision": torchvision.models.resnetXX with fc = Linear(nf, n).
    in_channels != 3 replaces conv1 by a new 7x7/2 convolution with that many
    input channels (as fastai does for n_in != 3). widths (4 ints, e.g.
    [16, 32, 64, 128]) builds a narrower ResNet with the same blocks and
    module names (the stem has widths[0] channels).
    The model carries its description in attributes canopy_arch, canopy_head,
    canopy_in_channels, canopy_n_classes, canopy_widths.

load_weights(model, path)
    Loads a PyTorch state_dict file (torch.save(model.state_dict())), a
    fastai learn.save() file ({'model': state_dict, 'opt': ...}), a
    {'state_dict': ...} checkpoint or a pickled nn.Module, strictly: every key
    and shape must match. A "module." prefix (DataParallel) is removed. For a
    fastai head the presence of the head's Linear biases is taken from the
    file, so both fastai v1 and v2 files load into head="fastai" or
    "fastai1" models. Raises WeightsError with a message naming the file,
    what is wrong and, when the file is recognisable, which --arch,
    --in-channels, --classes and --head it was made for.

load_state_dict(model, sd, path)
    load_weights() for a state dict already read from path.

describe_state_dict(sd) -> dict or None
    What a state dict is: {"arch", "head", "in_channels", "n_classes",
    "widths"}; None when it is not a ResNet this module builds.

read_state_dict(path) -> dict
    The state dict of a weights file (see load_weights); raises WeightsError.

randomize(model, seed, calib=None, size=64)
    Random weights with non-trivial BatchNorm statistics (every BatchNorm2d
    and BatchNorm1d: running mean/var calibrated on a batch of model inputs,
    calib, then perturbed; random affine weight and bias) scaled so that
    activations neither blow up nor vanish and the output probabilities
    spread over (0, 1). For tests and benchmarks; deterministic from seed.

random_chips(seed, n, c, size) -> uint8 tensor (n, c, size, size)
    Random image chips with structure (smooth patterns, noise, per-chip
    brightness and contrast); deterministic from seed.

normalise(chips, scale, mean, std) -> float32 tensor
    Model input from raw pixels: (v * scale - mean[c]) / std[c].

default_meta(n_classes, in_channels) -> dict
    canopy's default metadata for a model (see export_onnx).

export_onnx(model, path, input_size, in_channels, meta, opset=13,
            fold_bn=True) -> onnx.ModelProto
    Exports the model in eval mode with torch.onnx.export, dynamic batch,
    height and width axes, input "input" (N, C, H, W float32, normalised as
    the metadata says), output "probs" (N, n_classes): a Sigmoid is appended
    to the model, so the ONNX output is per-label probabilities, not logits.
    fold_bn=True lets the exporter fold BatchNormalization into the
    preceding Conv (BatchNorm1d of a fastai head stays a node);
    fold_bn=False keeps every BatchNormalization node. Writes canopy's
    metadata into metadata_props (all strings; JSON where structured):
    canopy.labels, canopy.thresholds, canopy.markers (JSON arrays),
    canopy.input_size, canopy.bands (JSON array of 1-based source bands, or of
    band roles/names such as "red" or "B04"), canopy.trained_on (when given),
    canopy.scale, canopy.mean, canopy.std (JSON arrays), canopy.gsd_m (when
    given), canopy.name, canopy.version. meta is a dict with any of the keys
    labels, thresholds (a number or one per label), markers, bands, scale,
    mean, std, gsd_m, name, version; missing keys get default_meta()'s
    values. The file is checked with onnx.checker and written to a temporary
    name renamed into place, so a failure leaves no partial file. Returns
    the ONNX model written. Raises ValueError for bad metadata.
"""
import json
import math
import re
import os
import tempfile
import warnings

import torch
import torch.nn as nn
import torchvision
from torchvision.models.resnet import BasicBlock, Bottleneck

from canopy_labels import (DEFAULT_MARKERS, IMAGENET_MEAN, IMAGENET_STD, KAGGLE_LABELS,
                           NIR_MEAN, NIR_STD)

__all__ = [
    "KAGGLE_LABELS", "DEFAULT_MARKERS", "ARCHS", "HEADS", "IMAGENET_MEAN", "IMAGENET_STD",
    "NIR_MEAN", "NIR_STD", "WeightsError", "build_model", "load_weights", "read_state_dict",
    "describe_state_dict", "load_state_dict", "randomize", "random_chips",
    "normalise", "default_meta", "complete_meta", "export_onnx",
]

# name -> (block, blocks per stage, torchvision constructor)
ARCHS = {
    "resnet18": (BasicBlock, [2, 2, 2, 2], torchvision.models.resnet18),
    "resnet34": (BasicBlock, [3, 4, 6, 3], torchvision.models.resnet34),
    "resnet50": (Bottleneck, [3, 4, 6, 3], torchvision.models.resnet50),
    "resnet101": (Bottleneck, [3, 4, 23, 3], torchvision.models.resnet101),
    "resnet152": (Bottleneck, [3, 8, 36, 3], torchvision.models.resnet152),
}

HEADS = ("fastai", "fastai1", "torchvision")


STANDARD_WIDTHS = [64, 128, 256, 512]
DEFAULT_THRESHOLD = 0.2


class WeightsError(Exception):
    """A weights file that cannot be read or does not fit the model."""


class AdaptiveConcatPool2d(nn.Module):
    """fastai's AdaptiveConcatPool2d: global max pool and global average pool
    concatenated on the channel axis, max first. No parameters."""

    def __init__(self, size=1):
        super().__init__()
        self.mp = nn.AdaptiveMaxPool2d(size)
        self.ap = nn.AdaptiveAvgPool2d(size)

    def forward(self, x):
        return torch.cat([self.mp(x), self.ap(x)], 1)


class NarrowResNet(nn.Module):
    """torchvision's ResNet with other stage widths: same blocks, same module
    names (conv1, bn1, relu, maxpool, layer1..4, avgpool, fc), same
    initialisation. widths[0] is also the stem width."""

    def __init__(self, block, layers, widths, num_classes=1000):
        super().__init__()
        self.inplanes = widths[0]
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, widths[0], layers[0], 1)
        self.layer2 = self._make_layer(block, widths[1], layers[1], 2)
        self.layer3 = self._make_layer(block, widths[2], layers[2], 2)
        self.layer4 = self._make_layer(block, widths[3], layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[3] * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, block, planes, blocks, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _fastai_head(nf, n_classes, bias):
    """fastai's default head for nf pooled features (2*nf after concat pool):
    v2 (bias=False, LinBnDrop with bn) or v1 (bias=True, bn_drop_lin)."""
    return nn.Sequential(
        AdaptiveConcatPool2d(1),
        nn.Flatten(),
        nn.BatchNorm1d(2 * nf),
        nn.Dropout(0.25),
        nn.Linear(2 * nf, 512, bias=bias),
        nn.ReLU(inplace=True),
        nn.BatchNorm1d(512),
        nn.Dropout(0.5),
        nn.Linear(512, n_classes, bias=bias),
    )


def build_model(arch, n_classes, in_channels=3, head="fastai", widths=None):
    """A new ResNet classifier (see the module docstring); the caller owns it.
    Raises ValueError for an unknown arch/head or bad sizes."""
    if arch not in ARCHS:
        raise ValueError("unknown architecture %r; choose one of %s" % (arch, ", ".join(ARCHS)))
    if head == "fastai2":
        head = "fastai"
    if head not in HEADS:
        raise ValueError("unknown head %r; choose one of %s" % (head, ", ".join(HEADS)))
    if int(n_classes) < 1:
        raise ValueError("the number of classes must be at least 1, not %r" % (n_classes,))
    if int(in_channels) < 1:
        raise ValueError("the number of input channels must be at least 1, not %r" % (in_channels,))
    block, layers, ctor = ARCHS[arch]
    if widths is not None:
        widths = [int(w) for w in widths]
        if len(widths) != 4 or min(widths) < 1:
            raise ValueError("widths must be 4 positive channel counts, not %r" % (widths,))
        if widths == STANDARD_WIDTHS:
            widths = None
    if widths is None:
        net = ctor(weights=None)
        stem = STANDARD_WIDTHS[0]
        nf = STANDARD_WIDTHS[3] * block.expansion
    else:
        net = NarrowResNet(block, layers, widths)
        stem = widths[0]
        nf = widths[3] * block.expansion
    if in_channels != 3:
        net.conv1 = nn.Conv2d(in_channels, stem, kernel_size=7, stride=2, padding=3, bias=False)
        nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
    if head == "torchvision":
        net.fc = nn.Linear(nf, n_classes)
        model = net
    else:
        body = nn.Sequential(*list(net.children())[:-2])
        model = nn.Sequential(body, _fastai_head(nf, n_classes, head == "fastai1"))
    model.canopy_arch = arch
    model.canopy_head = head
    model.canopy_in_channels = int(in_channels)
    model.canopy_n_classes = int(n_classes)
    model.canopy_widths = list(widths) if widths is not None else list(STANDARD_WIDTHS)
    model.eval()
    return model


def _set_fastai_head_bias(model, bias):
    """Rebuilds the two Linear layers of a fastai head with or without bias
    (fastai v1 files have biases, v2 files do not)."""
    head = model[1]
    for i in (4, 8):
        old = head[i]
        if (old.bias is not None) == bias:
            continue
        new = nn.Linear(old.in_features, old.out_features, bias=bias)
        with torch.no_grad():
            new.weight.copy_(old.weight)
            if bias:
                new.bias.zero_()
        head[i] = new
    model.canopy_head = "fastai1" if bias else "fastai"


def _stage_prefixes(sd):
    """(kind, stem conv key, [stage prefixes], final linear key) of a ResNet
    state dict, or None."""
    if "conv1.weight" in sd and "layer1.0.conv1.weight" in sd:
        return ("torchvision", "conv1.weight", ["layer%d." % i for i in range(1, 5)], "fc.weight")
    if "0.0.weight" in sd and "0.4.0.conv1.weight" in sd:
        return ("fastai", "0.0.weight", ["0.%d." % i for i in range(4, 8)], "1.8.weight")
    return None


def describe_state_dict(sd):
    """{"arch", "head", "in_channels", "n_classes", "widths"} for a ResNet
    state dict this module builds, else None. arch is "resnet?" for a block
    pattern that is none of ARCHS."""
    try:
        p = _stage_prefixes(sd)
        if p is None:
            return None
        kind, stem_key, stages, fc_key = p
        counts, widths = [], []
        bottleneck = (stages[0] + "0.conv3.weight") in sd
        for s in stages:
            n = 0
            while (s + "%d.conv1.weight" % n) in sd:
                n += 1
            counts.append(n)
            widths.append(int(sd[s + "0.conv1.weight"].shape[0]))
        arch = "resnet?"
        for name, (block, layers, _) in ARCHS.items():
            if layers == counts and (block is Bottleneck) == bottleneck:
                arch = name
        head = kind
        if kind == "fastai":
            head = "fastai1" if "1.4.bias" in sd else "fastai"
        n_classes = int(sd[fc_key].shape[0]) if fc_key in sd else None
        return {"arch": arch, "head": head, "in_channels": int(sd[stem_key].shape[1]),
                "n_classes": n_classes, "widths": widths}
    except (AttributeError, IndexError, TypeError, KeyError):
        return None


def describe_text(d):
    """Human-readable form of describe_state_dict()'s dict."""
    w = "" if d["widths"] == STANDARD_WIDTHS else ", widths %s" % ",".join(map(str, d["widths"]))
    return "%s with a %s head (%d input channels, %s classes%s)" % (
        d["arch"], d["head"], d["in_channels"],
        "?" if d["n_classes"] is None else d["n_classes"], w)


def _options_for(d):
    """The export-onnx options that build the model a state dict describes."""
    opts = ["--arch %s" % d["arch"], "--head %s" % d["head"],
            "--in-channels %d" % d["in_channels"]]
    if d["n_classes"] is not None:
        opts.append("--classes %d" % d["n_classes"])
    if d["widths"] != STANDARD_WIDTHS:
        opts.append("--widths %s" % ",".join(map(str, d["widths"])))
    return " ".join(opts)


def read_state_dict(path):
    """The state dict (a new dict of tensors) stored in a weights file.
    Raises WeightsError naming the file when it cannot be read or holds no
    state dict."""
    if not os.path.exists(path):
        raise WeightsError("%s: no such file" % path)
    try:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as safe_err:  # noqa: BLE001 - retried with the full unpickler
            if isinstance(safe_err, (OSError, EOFError)):
                raise
            # Files with pickled objects other than tensors and containers
            # (a whole nn.Module, fastai optimiser hyper-parameters).
            obj = torch.load(path, map_location="cpu")
    except ModuleNotFoundError as e:
        raise WeightsError(
            "%s: this file needs the Python module '%s' to be read (a pickled object such as "
            "fastai's learn.export() file); save the weights with learn.save() or "
            "torch.save(model.state_dict()) instead" % (path, e.name)) from None
    except Exception as e:  # noqa: BLE001 - torch raises many kinds for bad files
        raise WeightsError("%s: not a PyTorch weights file (%s: %s); pass a file written by "
                           "torch.save(model.state_dict()) or fastai's learn.save()"
                           % (path, type(e).__name__, str(e).strip().splitlines()[0]
                              if str(e).strip() else "no detail")) from None
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], (dict, nn.Module)):
        obj = obj["model"]  # fastai learn.save(): {'model': ..., 'opt': ...}
        if isinstance(obj, nn.Module):
            obj = obj.state_dict()
    elif isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj:
        found = "an empty dict" if isinstance(obj, dict) else type(obj).__name__
        raise WeightsError("%s: holds no state dict (found %s); pass a file written by "
                           "torch.save(model.state_dict()) or fastai's learn.save()"
                           % (path, found))
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not torch.is_tensor(v)]
    if bad:
        raise WeightsError("%s: entry %r is not a tensor; this is not a model state dict"
                           % (path, bad[0]))
    keys = list(obj)
    if all(k.startswith("module.") for k in keys):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return dict(obj)


def load_weights(model, path):
    """Loads a weights file into model (see the module docstring); strict.
    Returns model (in eval mode). Raises WeightsError naming the file and
    the mismatch."""
    return load_state_dict(model, read_state_dict(path), path)


def load_state_dict(model, sd, path):
    """Loads the state dict sd, read from the file path (named in messages),
    into model as load_weights() does. Returns model."""
    head = getattr(model, "canopy_head", None)
    if head in ("fastai", "fastai1") and "1.8.weight" in sd:
        has_bias = "1.4.bias" in sd or "1.8.bias" in sd
        _set_fastai_head_bias(model, has_bias)
    want = model.state_dict()
    # Files from PyTorch < 0.4.1 have no BatchNorm step counters (unused in
    # eval mode): keep the model's.
    sd = dict(sd)
    for k in want:
        if k.endswith(".num_batches_tracked") and k not in sd:
            sd[k] = want[k]
    missing = [k for k in want if k not in sd]
    unexpected = [k for k in sd if k not in want]
    shapes = [(k, tuple(sd[k].shape), tuple(want[k].shape)) for k in want
              if k in sd and tuple(sd[k].shape) != tuple(want[k].shape)]
    if missing or unexpected or shapes:
        d = describe_state_dict(sd)
        mine = "%s with a %s head (%d input channels, %d classes%s)" % (
            getattr(model, "canopy_arch", "the model"), head or "?",
            getattr(model, "canopy_in_channels", 0), getattr(model, "canopy_n_classes", 0),
            "" if getattr(model, "canopy_widths", STANDARD_WIDTHS) == STANDARD_WIDTHS
            else ", widths %s" % ",".join(map(str, model.canopy_widths)))
        parts = []
        if missing:
            parts.append("%d missing key%s (first: %s)" % (len(missing), "s" * (len(missing) > 1),
                                                            ", ".join(missing[:3])))
        if unexpected:
            parts.append("%d unexpected key%s (first: %s)" % (
                len(unexpected), "s" * (len(unexpected) > 1), ", ".join(unexpected[:3])))
        if shapes:
            k, got, exp = shapes[0]
            parts.append("%d shape mismatch%s (first: %s is %s in the file, %s in the model)"
                         % (len(shapes), "es" * (len(shapes) > 1), k, list(got), list(exp)))
        msg = "%s: the weights do not fit %s: %s" % (path, mine, "; ".join(parts))
        if d is not None:
            msg += ". The file holds %s; export it with %s" % (describe_text(d), _options_for(d))
        else:
            msg += ". The file is not a ResNet state dict this tool recognises"
        raise WeightsError(msg)
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        raise WeightsError("%s: loading failed: %s" % (path, str(e).splitlines()[0])) from None
    model.eval()
    return model


def random_chips(seed, n, c, size):
    """n random image chips as a uint8 tensor (n, c, size, size): smooth
    patterns of random scale plus pixel noise, each chip and band with its
    own brightness and contrast, so that a model's outputs differ between
    chips. Deterministic from seed."""
    gen = torch.Generator().manual_seed(int(seed))
    out = torch.empty(n, c, size, size)
    for i in range(n):
        k = int(torch.randint(2, 9, (1,), generator=gen))
        coarse = torch.randn(1, c, k, k, generator=gen)
        img = nn.functional.interpolate(coarse, size=(size, size), mode="bilinear",
                                        align_corners=False)[0]
        img = img + 0.35 * torch.randn(c, size, size, generator=gen)
        contrast = 20 + 50 * torch.rand(c, 1, 1, generator=gen)
        level = 40 + 170 * torch.rand(c, 1, 1, generator=gen)
        out[i] = img * contrast + level
    return out.round().clamp(0, 255).to(torch.uint8)


def normalise(chips, scale, mean, std):
    """Float32 model input from raw chips (n, c, h, w):
    (v * scale - mean[c]) / std[c], computed in float64 as canopy does."""
    x = chips.to(torch.float64) * float(scale)
    m = torch.tensor(mean, dtype=torch.float64).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float64).view(1, -1, 1, 1)
    return ((x - m) / s).to(torch.float32)


def randomize(model, seed, calib=None, size=64):
    """Random weights and non-trivial BatchNorm statistics (see the module
    docstring). calib: a float batch (n >= 8, C, H, W) of model inputs to
    calibrate the BatchNorm statistics on; default 32 random_chips()
    normalised with default_meta()'s statistics. Modifies model in place and
    returns it, in eval mode."""
    gen = torch.Generator().manual_seed(int(seed))
    c = int(getattr(model, "canopy_in_channels", 3))
    if calib is None:
        d = default_meta(1, c)
        calib = normalise(random_chips(int(seed) + 7919, 32, c, int(size)),
                          d["scale"], d["mean"], d["std"])
    bns = [m for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * math.sqrt(2.0 / fan_in))
                if m.bias is not None:
                    m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))
            elif isinstance(m, nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen)
                               * math.sqrt(1.0 / m.in_features))
                if m.bias is not None:
                    m.bias.copy_(0.3 * torch.randn(m.bias.shape, generator=gen))
        for m in bns:
            m.weight.copy_(0.6 + 0.8 * torch.rand(m.weight.shape, generator=gen))
            m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=gen))
            m.reset_running_stats()
        # The last BatchNorm of each residual branch gets a small scale, as
        # in trained ResNets, smaller in deeper ones: with full-scale
        # branches a deep random ResNet maps every image to nearly the same
        # features, and the outputs then differ only by amplified rounding
        # noise.
        blocks = [m for m in model.modules() if isinstance(m, (BasicBlock, Bottleneck))]
        depth = min(1.0, math.sqrt(16.0 / max(1, len(blocks))))
        for m in blocks:
            last_bn = m.bn3 if isinstance(m, Bottleneck) else m.bn2
            last_bn.weight.copy_(depth * (0.1 + 0.3 * torch.rand(last_bn.weight.shape,
                                                                 generator=gen)))
        # Calibrate every BatchNorm on one batch of random images: in
        # training mode each normalises with the batch statistics, which is
        # what it then does in eval mode with running statistics = those
        # statistics (momentum None: the cumulative average of one batch).
        model.eval()
        saved = [(m.momentum, m.training) for m in bns]
        for m in bns:
            m.momentum = None
            m.train()
        model(calib)
        for m, (mom, _) in zip(bns, saved):
            m.momentum = mom
            m.eval()
        # Perturb the statistics so that they are not exactly the data's.
        for m in bns:
            var = m.running_var
            m.running_mean.add_(0.2 * var.sqrt() * torch.randn(var.shape, generator=gen))
            var.mul_(torch.exp(0.4 * (torch.rand(var.shape, generator=gen) - 0.5)))
        # Scale each row of the last Linear layer so that its logit varies
        # by about 1.5 over the calibration batch (deep random ResNets
        # otherwise saturate the sigmoid), and centre it where there is a
        # bias.
        last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
        seen = []
        hook = last.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].detach()))
        try:
            model(calib)
        finally:
            hook.remove()
        z = seen[0] @ last.weight.t()  # (n, classes) logits without bias
        sd = z.std(0).clamp_min(1e-6)
        last.weight.mul_((1.5 / sd).unsqueeze(1))
        if last.bias is not None:
            centre = (z.mean(0) * 1.5 / sd)
            last.bias.copy_(-centre + 0.5 * torch.randn(centre.shape, generator=gen))
    model.eval()
    return model


def default_meta(n_classes, in_channels):
    """canopy's default metadata for a model with n_classes outputs and
    in_channels input channels (a new dict)."""
    n, c = int(n_classes), int(in_channels)
    labels = list(KAGGLE_LABELS) if n == len(KAGGLE_LABELS) else ["label_%d" % i for i in range(n)]
    mean = (IMAGENET_MEAN + [NIR_MEAN] * max(0, c - 3))[:c]
    std = (IMAGENET_STD + [NIR_STD] * max(0, c - 3))[:c]
    return {
        "labels": labels,
        "thresholds": [DEFAULT_THRESHOLD] * n,
        "markers": [m for m in DEFAULT_MARKERS if m in labels],
        "bands": list(range(1, c + 1)),
        "scale": 1.0 / 255.0,
        "mean": mean,
        "std": std,
        "gsd_m": None,
        "name": "canopy-model",
        "version": "",
        "trained_on": None,
    }


def _finite(x, what):
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise ValueError("%s must be a number, not %r" % (what, x)) from None
    if not math.isfinite(v):
        raise ValueError("%s must be finite, not %r" % (what, x))
    return v


def complete_meta(meta, n_classes, in_channels):
    """meta with defaults for missing keys, checked: lengths match the model,
    thresholds in [0, 1], markers among the labels, bands >= 1, std > 0.
    Returns a new dict; raises ValueError naming the key."""
    out = default_meta(n_classes, in_channels)
    meta = dict(meta or {})
    unknown = set(meta) - set(out) - {"input_size"}
    if unknown:
        raise ValueError("unknown metadata key(s): %s" % ", ".join(sorted(unknown)))
    for k, v in meta.items():
        if v is not None and k != "input_size":
            out[k] = v
    n, c = int(n_classes), int(in_channels)
    labels = [str(x) for x in out["labels"]]
    if len(labels) != n:
        raise ValueError("labels: %d names for a model with %d outputs" % (len(labels), n))
    if len(set(labels)) != n or any(not x or "," in x or any(ch.isspace() for ch in x)
                                    for x in labels):
        raise ValueError("labels must be distinct, non-empty and free of commas and spaces")
    out["labels"] = labels
    thr = out["thresholds"]
    if isinstance(thr, (int, float)):
        thr = [thr] * n
    thr = [_finite(t, "thresholds") for t in thr]
    if len(thr) != n:
        raise ValueError("thresholds: %d values for %d labels" % (len(thr), n))
    if any(t < 0 or t > 1 for t in thr):
        raise ValueError("thresholds must be within [0, 1]")
    out["thresholds"] = thr
    markers = [str(m) for m in out["markers"]]
    bad = [m for m in markers if m not in labels]
    if bad:
        raise ValueError("markers: %s %s not among the labels" % (", ".join(bad),
                                                                  "is" if len(bad) == 1 else "are"))
    out["markers"] = [x for x in labels if x in markers]  # label order, no duplicates
    bands = list(out["bands"])
    if bands and all(isinstance(b, str) for b in bands):
        # band roles or names ("red", "B04"), resolved by canopy on each scene
        if len(bands) != c or any(not re.fullmatch(r"[A-Za-z0-9_-]{1,31}", b) for b in bands):
            raise ValueError("bands: %d band names (letters, digits, '_', '-') are needed for "
                             "%d input channels, not %r" % (c, c, bands))
    elif len(bands) != c or any(isinstance(b, str) or int(b) != b or int(b) < 1 for b in bands):
        raise ValueError("bands: %d positive 1-based band numbers or band names are needed for "
                         "%d input channels, not %r" % (c, c, bands))
    else:
        out["bands"] = [int(b) for b in bands]
    if out["trained_on"] is not None:
        out["trained_on"] = str(out["trained_on"])
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", out["trained_on"]):
            raise ValueError("trained_on: a product name such as planet-visual-jpeg or "
                             "sentinel2-l2a (letters, digits, '.', '_', '-'), not %r"
                             % out["trained_on"])
    out["scale"] = _finite(out["scale"], "scale")
    if out["scale"] <= 0:
        raise ValueError("scale must be positive")
    for k in ("mean", "std"):
        vals = [_finite(v, k) for v in out[k]]
        if len(vals) != c:
            raise ValueError("%s: %d values for %d input channels" % (k, len(vals), c))
        out[k] = vals
    if any(s <= 0 for s in out["std"]):
        raise ValueError("std values must be positive")
    if out["gsd_m"] is not None:
        out["gsd_m"] = _finite(out["gsd_m"], "gsd_m")
        if out["gsd_m"] <= 0:
            raise ValueError("gsd_m must be positive")
    out["name"] = str(out["name"])
    out["version"] = str(out["version"])
    return out


def _count_bn(m):
    n1 = sum(1 for x in m.modules() if isinstance(x, nn.BatchNorm1d))
    n2 = sum(1 for x in m.modules() if isinstance(x, nn.BatchNorm2d))
    return n1, n2


def _jnum(v):
    """A float as JSON: shortest repr that round-trips."""
    return json.dumps(float(v))


def export_onnx(model, path, input_size, in_channels, meta, opset=13, fold_bn=True):
    """Exports model (put in eval mode) to path as ONNX with canopy's
    metadata (see the module docstring). Returns the onnx.ModelProto
    written."""
    import onnx  # only export needs it

    input_size, in_channels, opset = int(input_size), int(in_channels), int(opset)
    if input_size < 32:
        raise ValueError("input size must be at least 32 pixels, not %d" % input_size)
    if not 11 <= opset <= 17:
        raise ValueError("opset must be within 11..17 (what canopy reads), not %d" % opset)
    model.eval()
    net = nn.Sequential(model, nn.Sigmoid()).eval()
    dummy = torch.zeros(1, in_channels, input_size, input_size)
    with torch.no_grad():
        n_out = net(dummy).shape
    if len(n_out) != 2:
        raise ValueError("the model's output has shape %s; a classifier's is (N, classes)"
                         % list(n_out))
    m = complete_meta(meta, n_out[1], in_channels)

    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        mode = torch.onnx.TrainingMode.EVAL if fold_bn else torch.onnx.TrainingMode.PRESERVE
        with torch.no_grad(), warnings.catch_warnings():
            # Constant folding is wanted in both modes (it turns shape
            # computations and transposed Linear weights into constants);
            # the model is in eval mode, so the warning about PRESERVE
            # mode with training models does not apply.
            warnings.filterwarnings("ignore", message=".*constant folding.*")
            torch.onnx.export(
                net, dummy, tmp,
                input_names=["input"], output_names=["probs"],
                dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"},
                              "probs": {0: "batch"}},
                opset_version=opset, do_constant_folding=True, training=mode)
        proto = onnx.load(tmp)
        n_bn = sum(1 for node in proto.graph.node if node.op_type == "BatchNormalization")
        if not fold_bn and n_bn != sum(_count_bn(model)):
            raise RuntimeError("internal: the export kept %d of %d BatchNormalization layers"
                               % (n_bn, sum(_count_bn(model))))
        props = [
            ("canopy.labels", json.dumps(m["labels"], separators=(",", ":"))),
            ("canopy.thresholds", "[" + ",".join(_jnum(t) for t in m["thresholds"]) + "]"),
            ("canopy.markers", json.dumps(m["markers"], separators=(",", ":"))),
            ("canopy.input_size", str(input_size)),
            ("canopy.bands", json.dumps(m["bands"], separators=(",", ":"))),
            ("canopy.scale", repr(float(m["scale"]))),
            ("canopy.mean", "[" + ",".join(_jnum(v) for v in m["mean"]) + "]"),
            ("canopy.std", "[" + ",".join(_jnum(v) for v in m["std"]) + "]"),
        ]
        if m["gsd_m"] is not None:
            props.append(("canopy.gsd_m", repr(float(m["gsd_m"]))))
        props += [("canopy.name", m["name"]), ("canopy.version", m["version"])]
        if m["trained_on"] is not None:
            props.append(("canopy.trained_on", m["trained_on"]))
        del proto.metadata_props[:]
        for k, v in props:
            entry = proto.metadata_props.add()
            entry.key, entry.value = k, v
        onnx.checker.check_model(proto)
        onnx.save(proto, tmp)
        os.chmod(tmp, 0o644 & ~_umask())
        os.replace(tmp, path)
        tmp = None
        return proto
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def _umask():
    cur = os.umask(0)
    os.umask(cur)
    return cur
