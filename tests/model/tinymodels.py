"""Tiny ResNet-like models for the model-loading tests (test_meta.py,
test_bad_models.py): built in PyTorch, exported with torch.onnx.export, with
metadata edited through the onnx package, and chips written with GDAL.

The network: Conv-BN-ReLU, MaxPool, one residual block (Conv-BN-ReLU-Conv-BN
+ identity, ReLU), global average pool, Flatten, Linear. Small enough that
an export takes a fraction of a second.
"""
import os

import numpy as np
import onnx
import torch
import torch.nn as nn
from osgeo import gdal

gdal.UseExceptions()

# The Kaggle "Planet: Understanding the Amazon from Space" labels (spec).
KAGGLE = ["agriculture", "artisinal_mine", "bare_ground", "blooming", "blow_down", "clear",
          "cloudy", "conventional_mine", "cultivation", "habitation", "haze", "partly_cloudy",
          "primary", "road", "selective_logging", "slash_burn", "water"]
MARKERS = ["agriculture", "artisinal_mine", "bare_ground", "blow_down", "conventional_mine",
           "cultivation", "habitation", "road", "selective_logging", "slash_burn"]
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


class Tiny(nn.Module):
    def __init__(self, in_ch, n_out, width=8):
        super().__init__()
        w = width
        self.stem = nn.Sequential(nn.Conv2d(in_ch, w, 3, 2, 1, bias=False), nn.BatchNorm2d(w),
                                  nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        self.c1 = nn.Conv2d(w, w, 3, 1, 1, bias=False)
        self.b1 = nn.BatchNorm2d(w)
        self.c2 = nn.Conv2d(w, w, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(w)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(w, n_out)

    def forward(self, x):
        x = self.stem(x)
        y = torch.relu(self.b1(self.c1(x)))
        x = torch.relu(self.b2(self.c2(y)) + x)
        return self.fc(torch.flatten(self.pool(x), 1))


def tiny(in_ch=3, n_out=17, seed=0, width=8):
    """A Tiny model with random weights and BatchNorm statistics, in eval
    mode."""
    g = torch.Generator().manual_seed(seed)
    m = Tiny(in_ch, n_out, width)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.copy_(torch.randn(mod.num_features, generator=g) * 0.1)
                mod.running_var.copy_(torch.rand(mod.num_features, generator=g) + 0.5)
    return m.eval()


def export(model, path, in_ch=3, size=40, opset=13, dynamic=True, meta=None, fold=True):
    """Exports with dynamic batch/height/width axes (or fixed size), then
    writes `meta` ({key: string}) into metadata_props. Returns path."""
    x = torch.zeros(1, in_ch, size, size)
    kw = dict(opset_version=opset, input_names=["input"], output_names=["logits"])
    if dynamic:
        kw["dynamic_axes"] = {"input": {0: "n", 2: "h", 3: "w"}, "logits": {0: "n"}}
    if not fold:
        kw["training"] = torch.onnx.TrainingMode.PRESERVE
        kw["do_constant_folding"] = False
    torch.onnx.export(model, x, path, **kw)
    if meta is not None:
        set_meta(path, meta)
    return path


def set_meta(path, meta, out=None):
    """Replaces the metadata_props of an ONNX file ({key: string})."""
    m = onnx.load(path)
    del m.metadata_props[:]
    for k, v in meta.items():
        e = m.metadata_props.add()
        e.key = k
        e.value = v
    onnx.save(m, out or path)
    return out or path


def write_chips(folder, n, bands, size, seed, dtype=np.uint8, hi=256, ext=".tif"):
    """n chips (bands, size, size) of random values in [0, hi) written with
    GDAL; returns (paths, arrays)."""
    rng = np.random.default_rng(seed)
    gdt = {np.uint8: gdal.GDT_Byte, np.uint16: gdal.GDT_UInt16}[dtype]
    paths, arrays = [], []
    for i in range(n):
        a = rng.integers(0, hi, (bands, size, size)).astype(dtype)
        p = os.path.join(folder, "chip_%02d%s" % (i, ext))
        ds = gdal.GetDriverByName("GTiff").Create(p, size, size, bands, gdt)
        for b in range(bands):
            ds.GetRasterBand(b + 1).WriteArray(a[b])
        ds = None
        paths.append(p)
        arrays.append(a)
    return paths, arrays


def torch_probs(model, arrays, bands, scale, mean, std):
    """The reference: channel c = band bands[c] (1-based) of each raw chip,
    (v * scale - mean[c]) / std[c], through the PyTorch model, sigmoid."""
    xs = []
    for a in arrays:
        ch = [(a[b - 1].astype(np.float64) * scale - mean[c]) / std[c] for c, b in enumerate(bands)]
        xs.append(np.stack(ch).astype(np.float32))
    with torch.no_grad():
        return torch.sigmoid(model(torch.from_numpy(np.stack(xs)))).numpy().astype(np.float64)


def parse_probs(stdout):
    """`canopy predict --probs` output -> (header labels, names, probs array)."""
    lines = stdout.strip().split("\n")
    head = lines[0].split(",")
    assert head[0] == "image_name", "header %r" % lines[0]
    names, rows = [], []
    for ln in lines[1:]:
        f = ln.split(",")
        names.append(f[0])
        rows.append([float(v) for v in f[1:]])
    return head[1:], names, np.array(rows, dtype=np.float64)
