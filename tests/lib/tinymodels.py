"""Tiny models for the tests (one home, tests/lib/), three kinds:

- tiny(): a ResNet-like network in plain PyTorch (Conv-BN-ReLU, MaxPool,
  one residual block (Conv-BN-ReLU-Conv-BN + identity, ReLU), global
  average pool, Flatten, Linear), exported with torch.onnx.export, with
  metadata edited through the onnx package (tests/model);
- onnx_graph_model(): a Conv-GlobalAveragePool-Flatten-Sigmoid graph written
  node by node with onnx.helper, no PyTorch (tests/eval);
- ResNetTiny: a narrow torchvision ResNet-18 with the fastai head from
  scripts/canopy_models.py, exported with canopy's metadata, and its
  PyTorch twin as the reference (tests/scene, tests/plugin).

Chips are written with GDAL. Labels and statistics come from
scripts/canopy_labels.py. Each builds in a fraction of a second.
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from osgeo import gdal

gdal.UseExceptions()

import torch  # noqa: E402  (after GDAL: both load their own libraries)
import torch.nn as nn  # noqa: E402

from canopy_labels import DEFAULT_MARKERS as MARKERS  # noqa: E402,F401
from canopy_labels import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402,F401
from canopy_labels import KAGGLE_LABELS as KAGGLE  # noqa: E402,F401


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


def onnx_graph_model(meta, big=False, opset=13):
    """Conv-GlobalAveragePool-Flatten-Sigmoid written with onnx.helper, with
    the (key, value) pairs of meta as metadata_props (repeated keys kept);
    big: about 1.3 MB of weights, so that lengths take multi-byte varints."""
    rng = np.random.default_rng(1)
    cin, cout = 3, (64 if big else 4)
    k = 7 if big else 3
    w = rng.normal(size=(cout, cin, k, k)).astype(np.float32)
    inits = [numpy_helper.from_array(w, "conv.weight")]
    if big:
        inits.append(numpy_helper.from_array(rng.normal(size=(64, 5000)).astype(np.float32),
                                             "unused.big"))
    nodes = [helper.make_node("Conv", ["input", "conv.weight"], ["c"], pads=[1, 1, 1, 1]
                              if not big else [3, 3, 3, 3], name="conv"),
             helper.make_node("GlobalAveragePool", ["c"], ["g"], name="gap"),
             helper.make_node("Flatten", ["g"], ["f"], name="flat"),
             helper.make_node("Sigmoid", ["f"], ["probs"], name="sig")]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                      ["N", cin, "H", "W"])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", cout])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="canopy-test", producer_version="1")
    model.doc_string = "test model"
    for k_, v in meta:
        e = model.metadata_props.add()
        e.key, e.value = k_, v
    if len({k_ for k_, _ in meta}) == len(meta):  # the checker refuses repeated keys
        onnx.checker.check_model(model)
    return model


class ResNetTiny:
    """A small random ResNet exported to ONNX, and its PyTorch twin."""

    def __init__(self, path, seed=1, input_size=32, in_channels=3, gsd_m=None, bands=None,
                 scale=1 / 255.0, name="tiny", widths=(8, 8, 16, 16)):
        import canopy_models as cm  # scripts/ is on PYTHONPATH
        torch.manual_seed(seed)
        self.path = path
        self.input_size = input_size
        self.C = in_channels
        self.model = cm.build_model("resnet18", len(cm.KAGGLE_LABELS), in_channels, "fastai",
                                    widths=list(widths))
        d = cm.default_meta(len(cm.KAGGLE_LABELS), in_channels)
        calib = cm.normalise(cm.random_chips(seed + 11, 16, in_channels, input_size),
                             d["scale"], d["mean"], d["std"])
        cm.randomize(self.model, seed, calib=calib)
        meta = {"name": name, "version": "t%d" % seed, "scale": scale}
        if gsd_m is not None:
            meta["gsd_m"] = gsd_m
        if bands is not None:
            meta["bands"] = list(bands)
        cm.export_onnx(self.model, path, input_size, in_channels, meta)
        self.meta = cm.complete_meta(meta, len(cm.KAGGLE_LABELS), in_channels)
        self.labels = self.meta["labels"]
        self.markers = self.meta["markers"]
        self.net = torch.nn.Sequential(self.model, torch.nn.Sigmoid()).eval()

    def probs(self, x):
        """x: normalised input (n, C, S, S) -> probabilities (n, labels)."""
        with torch.no_grad():
            return self.net(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()

    def normalise(self, raw, offset=0.0, scale=None):
        """raw (C, h, w) -> normalised, float64, as the metadata says."""
        s = self.meta["scale"] if scale is None else scale
        m = np.array(self.meta["mean"], np.float64)[:, None, None]
        d = np.array(self.meta["std"], np.float64)[:, None, None]
        return ((raw.astype(np.float64) - offset) * s - m) / d
