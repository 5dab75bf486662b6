"""Helpers shared by the tests/scene/test_classify_*.py tests (not a test):
the tiny model and synthetic scenes of tests/lib/, the PyTorch reference
for each chip, and readers of classify's outputs through GDAL/OGR.
"""
import hashlib
import json
import math
import os
import subprocess
import sys

import numpy as np
from osgeo import gdal, ogr, osr

import canopytest as ct

gdal.UseExceptions()
ogr.UseExceptions()

import torch  # noqa: E402  (after GDAL: both load their own libraries)

import scenes  # noqa: E402  (tests/lib/ is on PYTHONPATH)
import tinymodels as tm  # noqa: E402

torch.set_num_threads(1)


# The tiny model and the synthetic scenes live in tests/lib/ (shared with
# tests/plugin and tests/batch); the scene tests use them through this module.
Tiny = tm.ResNetTiny
make_scene = scenes.make_scene
texture = scenes.texture


def block_mean(x, k):
    """(C, H, W) -> (C, H/k, W/k) means of k x k blocks (GDAL's average
    resampling at an integer factor)."""
    C, H, W = x.shape
    return x.reshape(C, H // k, k, W // k, k).mean(axis=(2, 4))


def padded_chip(norm, ok, x0, y0, side):
    """A native chip of `side` pixels at (x0, y0): normalised values where
    valid, 0 (the mean) where invalid or outside the scene."""
    C, H, W = norm.shape
    out = np.zeros((C, side, side))
    x1, y1 = min(x0 + side, W), min(y0 + side, H)
    out[:, :y1 - y0, :x1 - x0] = np.where(ok[None, y0:y1, x0:x1], norm[:, y0:y1, x0:x1], 0.0)
    return out


def chip_as_image(src, x0, y0, cw, ch, size):
    """A chip as canopy resizes it: its whole pixels cut out of src (a GDAL
    dataset, e.g. a Float32 MEM copy of the scene) with gdal_translate
    -srcwin, then that image alone resized to size x size with GDAL's
    bilinear resampling (a fractional window inside it when the chip does
    not cover whole pixels). Returns (C, size, size) float."""
    xi, yi = int(math.floor(x0)), int(math.floor(y0))
    wi, hi = int(math.ceil(x0 + cw)) - xi, int(math.ceil(y0 + ch)) - yi
    hull = gdal.Translate("", src, format="MEM", srcWin=[xi, yi, wi, hi])
    if (x0, y0, cw, ch) == (xi, yi, wi, hi) and (wi, hi) == (size, size):
        return hull.ReadAsArray().astype(np.float64)
    out = gdal.Translate("", hull, format="MEM", srcWin=[x0 - xi, y0 - yi, cw, ch], width=size,
                         height=size, resampleAlg="bilinear")
    return out.ReadAsArray().astype(np.float64)


def valid_fraction(ok, x0, y0, side):
    H, W = ok.shape
    x1, y1 = min(x0 + side, W), min(y0 + side, H)
    return ok[y0:y1, x0:x1].sum() / float(side * side)


def classify(*args, check=True):
    return ct.canopy("classify", *args, check=check)


def outputs(outdir, name):
    base = os.path.join(outdir, name)
    return {k: base + s for k, s in (("probs", ".probs.tif"), ("masks", ".masks.tif"),
                                     ("markers", ".markers.geojson"),
                                     ("manifest", ".manifest.json"))}


def read_probs(path):
    """(rows, cols, labels) float probabilities with NaN where nodata, the
    band descriptions and the dataset."""
    ds = gdal.Open(path)
    arrs, names = [], []
    for b in range(1, ds.RasterCount + 1):
        band = ds.GetRasterBand(b)
        a = band.ReadAsArray().astype(np.float64)
        nd = band.GetNoDataValue()
        sc = band.GetScale() or 1.0
        off = band.GetOffset() or 0.0
        bad = np.isnan(a) if nd is None or math.isnan(nd) else (a == nd) | np.isnan(a)
        a = a * sc + off
        a[bad] = np.nan
        arrs.append(a)
        names.append(band.GetDescription())
    return np.stack(arrs, axis=-1), names, ds


def read_masks(path):
    ds = gdal.Open(path)
    arrs = [ds.GetRasterBand(b).ReadAsArray() for b in range(1, ds.RasterCount + 1)]
    nds = [ds.GetRasterBand(b).GetNoDataValue() for b in range(1, ds.RasterCount + 1)]
    return np.stack(arrs, axis=-1), nds, ds


def read_features(path):
    """[(label, properties, ogr geometry in EPSG:4326 lon/lat)]"""
    ds = ogr.Open(path)
    lyr = ds.GetLayer(0)
    out = []
    for f in lyr:
        g = f.GetGeometryRef().Clone()
        props = {lyr.GetLayerDefn().GetFieldDefn(i).GetName(): f.GetField(i)
                 for i in range(f.GetFieldCount())}
        out.append((props.get("label"), props, g))
    return out


def cell_lonlat(gt, wkt, r, c, clip=None):
    """Centre of grid cell (r, c) in lon/lat; with clip (minx, miny, maxx,
    maxy in the grid CRS, the scene's footprint), the centre of the part of
    the cell inside it (partial edge cells run past the scene)."""
    xs = sorted((gt[0] + c * gt[1], gt[0] + (c + 1) * gt[1]))
    ys = sorted((gt[3] + r * gt[5], gt[3] + (r + 1) * gt[5]))
    if clip:
        xs = [max(xs[0], clip[0]), min(xs[1], clip[2])]
        ys = [max(ys[0], clip[1]), min(ys[1], clip[3])]
    x = 0.5 * (xs[0] + xs[1])
    y = 0.5 * (ys[0] + ys[1])
    src = osr.SpatialReference()
    src.ImportFromWkt(wkt)
    src.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    dst = osr.SpatialReference()
    dst.ImportFromEPSG(4326)
    dst.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    lon, lat, _ = osr.CoordinateTransformation(src, dst).TransformPoint(x, y)
    return lon, lat


def scene_lonlat_bounds(path):
    """(lon_min, lat_min, lon_max, lat_max) of a scene from its corners and
    edges, through OSR."""
    ds = gdal.Open(path)
    gt = ds.GetGeoTransform()
    W, H = ds.RasterXSize, ds.RasterYSize
    src = osr.SpatialReference()
    src.ImportFromWkt(ds.GetProjection())
    src.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    dst = osr.SpatialReference()
    dst.ImportFromEPSG(4326)
    dst.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    tr = osr.CoordinateTransformation(src, dst)
    pts = []
    for i in range(21):
        for px, py in ((W * i / 20, 0), (W * i / 20, H), (0, H * i / 20), (W, H * i / 20)):
            lon, lat, _ = tr.TransformPoint(gt[0] + px * gt[1], gt[3] + py * gt[5])
            pts.append((lon, lat))
    lons, lats = zip(*pts)
    return min(lons), min(lats), max(lons), max(lats)


def scene_extent(path):
    """(minx, miny, maxx, maxy) of a north-up scene in its own CRS."""
    ds = gdal.Open(path)
    gt = ds.GetGeoTransform()
    x1 = gt[0] + ds.RasterXSize * gt[1]
    y1 = gt[3] + ds.RasterYSize * gt[5]
    return min(gt[0], x1), min(gt[3], y1), max(gt[0], x1), max(gt[3], y1)


def check_markers(path, probs, thresholds, labels, markers, gt, wkt, bounds, clip):
    """Features of each marker label: every positive chip's centre (of its
    part inside the scene, clip = scene_extent()) lies in exactly one polygon
    of its label, no other chip's centre in any; the chips property sums to
    the positive count; max_prob matches; every coordinate lies within the
    scene's lon/lat bounds (polygons are clipped to the scene). Returns the
    number of features."""
    feats = read_features(path)
    rows, cols, _ = probs.shape
    lo = bounds
    eps = 1.01e-7  # GeoJSON coordinates are rounded to 7 decimals
    for label, props, g in feats:
        assert label in markers, "feature for a non-marker label %s" % label
        env = g.GetEnvelope()  # minX, maxX, minY, maxY
        assert lo[0] - eps <= env[0] and env[1] <= lo[2] + eps and \
            lo[1] - eps <= env[2] and env[3] <= lo[3] + eps, (label, env, lo)
    centres = {(r, c): ogr.CreateGeometryFromWkt("POINT (%.12f %.12f)"
                                                 % cell_lonlat(gt, wkt, r, c, clip))
               for r in range(rows) for c in range(cols)}
    for k, label in enumerate(labels):
        mine = [(p, g) for lab, p, g in feats if lab == label]
        pos = {(r, c) for r in range(rows) for c in range(cols)
               if not np.isnan(probs[r, c, k]) and probs[r, c, k] >= thresholds[k]}
        if label not in markers:
            assert not mine
            continue
        for (r, c), pt in centres.items():
            n_in = sum(1 for _, g in mine if g.Contains(pt))
            want = 1 if (r, c) in pos else 0
            assert n_in == want, "%s: chip (%d,%d) centre in %d polygons, expected %d" % (
                label, r, c, n_in, want)
        assert sum(p["chips"] for p, _ in mine) == len(pos), (label, len(pos))
        if pos:
            mx = max(probs[r, c, k] for r, c in pos)
            assert abs(max(p["max_prob"] for p, _ in mine) - mx) < 1e-4, label
    return len(feats)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for blk in iter(lambda: f.read(1 << 20), b""):
            h.update(blk)
    return h.hexdigest()


def load_manifest(path):
    with open(path) as f:
        return json.load(f)


def _vm_hwm_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def run_measured(cmd):
    """Runs cmd: (returncode, stdout, stderr, peak RSS in KiB, wall seconds).
    The peak is the child's own VmHWM (/proc/PID/status, sampled until it
    exits): the rusage of a child forked from this big Python process would
    count the parent's pages mapped before exec."""
    import tempfile
    import time
    with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, stdout=fo, stderr=fe)
        peak = 0
        while p.poll() is None:
            v = _vm_hwm_kb(p.pid)
            if v is not None and p.poll() is None:
                peak = max(peak, v)
            time.sleep(0.02)
        wall = time.monotonic() - t0
        fo.seek(0)
        fe.seek(0)
        return p.returncode, fo.read().decode(), fe.read().decode(), peak, wall


def fail(msg):
    raise AssertionError(msg)


__all__ = [n for n in dir(sys.modules[__name__]) if not n.startswith("_")]
