"""parity -- shared code of the parity tests: `canopy predict` against
PyTorch on the same weights.

For one case (architecture, head, bands, input size, opset, BatchNorm folded
or kept): build the model with canopy_models, give it random weights with
non-trivial BatchNorm statistics calibrated on random chips, export it with
export_onnx, write random chips as image files with GDAL at exactly the
model input size (no resampling), then compare each chip's probabilities
from `canopy predict --probs` with PyTorch run on the same pixels (read back
with GDAL, scaled as the ONNX metadata says).
"""
import csv
import io
import json
import os
import sys
import time

import canopytest as ct

try:
    import numpy as np
    import onnx
    import torch
    from osgeo import gdal
    import canopy_models as cm
except ImportError as e:  # python3-torch is not built for every architecture
    print("SKIP: the parity tests need %s (Debian: python3-torch python3-torchvision "
          "python3-onnx python3-gdal)" % e.name, file=sys.stderr)
    sys.exit(ct.SKIP)

TOLERANCE = 1e-4
gdal.UseExceptions()
torch.set_num_threads(1)


class Case:
    """One parity case. bands: 1-based source band of each model channel
    (default 1..channels); chip_bands: bands in the chip files (default
    max(bands)); scale/mean/std: metadata (default canopy_models')."""

    def __init__(self, arch, head, channels, size, opset, fold, seed, widths=None, bands=None,
                 chip_bands=None, scale=None, mean=None, std=None, n_chips=6, batch=None,
                 labels=None, thresholds=None, ext=None):
        self.arch, self.head, self.channels, self.size = arch, head, channels, size
        self.opset, self.fold, self.seed, self.widths = opset, fold, seed, widths
        self.bands = bands or list(range(1, channels + 1))
        self.chip_bands = chip_bands or max(self.bands)
        self.scale, self.mean, self.std = scale, mean, std
        self.n_chips, self.batch = n_chips, batch
        self.labels = labels or list(cm.KAGGLE_LABELS)
        self.thresholds = thresholds
        self.ext = ext or [".tif"]

    def name(self):
        w = "" if self.widths is None else "w" + "-".join(map(str, self.widths))
        return "%s%s-%s-c%d-b%s-%dpx-opset%d-%s" % (
            self.arch, w, self.head, self.channels, "".join(map(str, self.bands)), self.size,
            self.opset, "folded" if self.fold else "bn")


def write_chip(path, pixels):
    """Writes a (bands, h, w) uint8 array as an image file GDAL reads back
    losslessly for .tif/.png; .jpg is lossy but both sides read the same
    decoded pixels."""
    b, h, w = pixels.shape
    ext = os.path.splitext(path)[1].lower()
    if ext == ".tif":
        ds = gdal.GetDriverByName("GTiff").Create(path, w, h, b, gdal.GDT_Byte)
        for i in range(b):
            ds.GetRasterBand(i + 1).WriteArray(pixels[i])
        ds.FlushCache()
        ds = None
        return
    mem = gdal.GetDriverByName("MEM").Create("", w, h, b, gdal.GDT_Byte)
    for i in range(b):
        mem.GetRasterBand(i + 1).WriteArray(pixels[i])
    drv = {".png": "PNG", ".jpg": "JPEG"}[ext]
    opts = ["QUALITY=90"] if drv == "JPEG" else []
    out = gdal.GetDriverByName(drv).CreateCopy(path, mem, options=opts)
    assert out is not None, "GDAL could not write %s" % path
    out = None
    mem = None


def read_chip(path):
    """(bands, h, w) pixels of an image file, read with GDAL."""
    ds = gdal.Open(path)
    arr = ds.ReadAsArray()
    ds = None
    return arr if arr.ndim == 3 else arr[None]


def file_meta(path):
    """canopy.* metadata of an ONNX file, parsed with the onnx package."""
    props = {p.key: p.value for p in onnx.load(path, load_external_data=False).metadata_props}
    return {
        "labels": json.loads(props["canopy.labels"]),
        "thresholds": json.loads(props["canopy.thresholds"]),
        "bands": json.loads(props["canopy.bands"]),
        "scale": float(props["canopy.scale"]),
        "mean": json.loads(props["canopy.mean"]),
        "std": json.loads(props["canopy.std"]),
        "input_size": int(props["canopy.input_size"]),
    }


def torch_input(pixels, meta):
    """Model input from file pixels (bands, h, w) as the metadata says:
    channel c = band bands[c], (v * scale - mean[c]) / std[c]."""
    sel = np.stack([pixels[b - 1] for b in meta["bands"]]).astype(np.float64)
    x = sel * meta["scale"]
    m = np.array(meta["mean"], dtype=np.float64)[:, None, None]
    s = np.array(meta["std"], dtype=np.float64)[:, None, None]
    return torch.from_numpy(((x - m) / s).astype(np.float32))


def parse_probs_csv(text, labels):
    """{image_name: [p per label]} from `canopy predict --probs` output."""
    rows = list(csv.reader(io.StringIO(text)))
    assert rows, "canopy predict --probs printed nothing"
    assert rows[0] == ["image_name"] + labels, \
        "header %r, expected image_name and the labels in order" % (rows[0],)
    out = {}
    for r in rows[1:]:
        assert len(r) == len(labels) + 1, "row %r: %d columns, expected %d" % (
            r, len(r), len(labels) + 1)
        out[r[0]] = [float(v) for v in r[1:]]
    return out


def probs_array(text, chips, labels):
    """`canopy predict --probs` output as an array (chips, labels), float64,
    in the order of chips."""
    got = parse_probs_csv(text, labels)
    return np.array([got[stem(p)] for p in chips], dtype=np.float64)


def parse_tags_csv(text):
    """{image_name: [tags]} from `canopy predict` (Kaggle submission CSV)."""
    rows = list(csv.reader(io.StringIO(text)))
    assert rows and rows[0] == ["image_name", "tags"], "header %r, expected image_name,tags" % (
        rows[:1],)
    out = {}
    for r in rows[1:]:
        assert len(r) == 2, "row %r: expected 2 columns" % (r,)
        out[r[0]] = r[1].split()
    return out


def check_model(p32, p64, what):
    """The test proves little if the sigmoid saturates or every chip gets the
    same answer: most probabilities must lie within (0.05, 0.95) and differ
    between chips. And it is unfair if float32 rounding alone moves them
    near the tolerance (an ill-conditioned random model): PyTorch float32
    must be within TOLERANCE / 5 of PyTorch float64."""
    inside = float(((p32 > 0.05) & (p32 < 0.95)).float().mean())
    spread = float(p32.std(0).mean())
    rounding = float((p32.double() - p64).abs().max())
    assert inside >= 0.5 and spread >= 0.05, (
        "%s: the random model is degenerate (%.0f%% of probabilities within (0.05, 0.95), "
        "mean std across chips %.3f); the test would prove little" % (what, 100 * inside, spread))
    assert rounding <= TOLERANCE / 5, (
        "%s: the random model is ill-conditioned: PyTorch float32 and float64 differ by %.3g"
        % (what, rounding))
    return rounding


def prepare(case, workdir):
    """Builds, randomises and exports the case's model and writes its chips.
    Returns (model, onnx path, [chip paths])."""
    t0 = time.time()
    model = cm.build_model(case.arch, len(case.labels), case.channels, case.head, case.widths)
    meta = {"labels": case.labels, "bands": case.bands, "name": case.name(), "version": "test"}
    if case.thresholds is not None:
        meta["thresholds"] = case.thresholds
    for k in ("scale", "mean", "std"):
        if getattr(case, k) is not None:
            meta[k] = getattr(case, k)
    full = cm.complete_meta(meta, len(case.labels), case.channels)
    calib_raw = cm.random_chips(case.seed + 1, 24, case.chip_bands, case.size)
    calib = cm.normalise(calib_raw[:, [b - 1 for b in case.bands]], full["scale"], full["mean"],
                         full["std"])
    cm.randomize(model, case.seed, calib=calib)
    path = os.path.join(workdir, case.name() + ".onnx")
    cm.export_onnx(model, path, case.size, case.channels, meta, opset=case.opset,
                   fold_bn=case.fold)
    chips = []
    raw = cm.random_chips(case.seed + 2, case.n_chips, case.chip_bands, case.size).numpy()
    for i in range(case.n_chips):
        p = os.path.join(workdir, "%s-chip%02d%s" % (case.name(), i, case.ext[i % len(case.ext)]))
        write_chip(p, raw[i])
        chips.append(p)
    case.t_prepare = time.time() - t0
    return model, path, chips


def reference(model, onnx_path, chips):
    """PyTorch probabilities (n, labels) of the chips read back with GDAL, in
    float32 (the reference) and float64 (to know how far float32 rounding
    alone moves them), and the file's metadata."""
    meta = file_meta(onnx_path)
    x = torch.stack([torch_input(read_chip(p), meta) for p in chips])
    assert x.shape[-1] == meta["input_size"] and x.shape[-2] == meta["input_size"]
    model.eval()
    with torch.no_grad():
        p32 = torch.sigmoid(model(x))
        p64 = torch.sigmoid(model.double()(x.double()))
    model.float()
    return p32, p64, meta


def stem(p):
    return os.path.splitext(os.path.basename(p))[0]


def check_probs(case, model, path, chips):
    """Compares `canopy predict --probs` with PyTorch on the case's chips;
    returns (max |p_canopy - p_torch|, PyTorch float32 probabilities,
    metadata).
    Raises AssertionError with the case name when they differ."""
    ref, ref64, meta = reference(model, path, chips)
    rounding = check_model(ref, ref64, case.name())
    args = ["predict", "-m", path, "--probs", "--threads", "2"]
    if case.batch:
        args += ["--batch", str(case.batch)]
    t0 = time.time()
    out = ct.canopy(*(args + chips))
    t_canopy = time.time() - t0
    got = parse_probs_csv(out.stdout, meta["labels"])
    assert sorted(got) == sorted(stem(p) for p in chips), \
        "%s: canopy printed rows %s for chips %s" % (case.name(), sorted(got),
                                                   [stem(p) for p in chips])
    diffs = np.stack([np.abs(np.array(got[stem(p)], dtype=np.float64) - ref[i].double().numpy())
                      for i, p in enumerate(chips)])
    worst = float(diffs.max())
    vs64 = max(float(np.abs(np.array(got[stem(p)]) - ref64[i].numpy()).max())
               for i, p in enumerate(chips))
    print("parity %-50s max|p_canopy - p_torch| = %.2e  (float64 torch: %.2e, torch float32 vs "
          "float64: %.2e; prepare %.0f s, canopy %.1f s)"
          % (case.name(), worst, vs64, rounding, case.t_prepare, t_canopy))
    sys.stdout.flush()
    if not worst <= TOLERANCE:
        i, j = np.unravel_index(int(np.argmax(diffs)), diffs.shape)
        raise AssertionError(
            "%s: max |p_canopy - p_torch| = %.3g > %g (chip %s, label %s: canopy %.7g, torch "
            "%.7g; %d of %d values off)" % (case.name(), worst, TOLERANCE, stem(chips[i]),
                                            meta["labels"][j], got[stem(chips[i])][j],
                                            float(ref[i][j]), int((diffs > TOLERANCE).sum()),
                                            diffs.size))
    return worst, ref, meta


def run_case(case, workdir):
    """prepare() and check_probs() for one case, then removes its files;
    returns the max |p_canopy - p_torch|."""
    model, path, chips = prepare(case, workdir)
    worst = check_probs(case, model, path, chips)[0]
    for p in chips + [path]:
        os.unlink(p)
    return worst


def run_cases(cases):
    """Runs every case (all of them, even after a failure) and raises one
    AssertionError listing the failures."""
    failures = []
    with ct.tmpdir() as d:
        for case in cases:
            try:
                run_case(case, d)
            except AssertionError as e:
                print("FAIL: %s" % e, file=sys.stderr)
                failures.append(str(e))
    if failures:
        raise AssertionError("%d of %d parity cases failed:\n%s"
                             % (len(failures), len(cases), "\n".join(failures)))
