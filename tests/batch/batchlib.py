"""Helpers of the tests/batch tests (not a test): small generated scenes, a
corrupt one, the scripts under test, and the comparison of a scene's outputs
with those of a direct `canopy classify` through GDAL/OGR.
"""
import os
import re
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "scene"))

import canopytest as ct  # noqa: E402
import test_classify_lib as L  # noqa: E402

GT = [400020.0, 3.0, 0.0, 8950020.0, 0.0, -3.0]  # UTM 20S, 3 m pixels
EPSG = 32720
# Small chips: a scene of a few hundred pixels makes a grid of 4 x 5 chips.
CHIP_OPTS = ["--chip", "64"]
# One thread: on a shared 2-core machine under load, two OpenMP threads per
# canopy run several times slower than one.
CLASSIFY_OPTS = CHIP_OPTS + ["--threads", "1"]
MODEL = os.environ.get("CANOPY_MODEL") or os.path.join(ct.SRCDIR, "data", "canopy-demo.onnx")
SIZES = ((260, 300), (200, 230), (300, 190), (240, 260))
# The log line of canopy-nightly: 2024-01-31T02:00:00+0000 canopy-nightly[123]: ...
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} canopy-nightly\[(\d+)\]: (.*)$")


def script(name):
    return os.path.join(ct.SRCDIR, "scripts", name)


def run_script(name, *args, **kw):
    """Runs scripts/NAME with /bin/sh (dash on Debian: POSIX sh)."""
    return ct.run(["sh", script(name)] + [str(a) for a in args], check=False, **kw)


def make_scene(path, i):
    w, h = SIZES[i % len(SIZES)]
    L.make_scene(path, L.texture(40 + i, 3, h, w), GT, EPSG)
    return path


def make_scenes(folder, n, prefix="scene_"):
    os.makedirs(folder, exist_ok=True)
    return [make_scene(os.path.join(folder, "%s%d.tif" % (prefix, i)), i) for i in range(n)]


def make_corrupt(path):
    """A GeoTIFF cut in half: its header opens, its pixels are gone."""
    L.make_scene(path, L.texture(50, 3, 384, 384), GT, EPSG)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    return path


def direct(scenes, out, *extra):
    """A direct canopy classify of the scenes (the reference)."""
    return ct.canopy("classify", "-q", "-m", MODEL, "-o", out, *(CLASSIFY_OPTS + list(extra) +
                                                                  list(scenes)))


def name_of(scene):
    return os.path.splitext(os.path.basename(scene))[0]


def assert_same_outputs(out, ref, name):
    """Scene NAME's probabilities and masks in OUTDIR `out` are those of
    `ref`: same grid, CRS, band names and values, read with GDAL; the markers
    have the same labels and chip counts, read with OGR."""
    a, ref_a = L.outputs(out, name), L.outputs(ref, name)
    p, names, ds = L.read_probs(a["probs"])
    q, ref_names, ref_ds = L.read_probs(ref_a["probs"])
    assert names == ref_names, (name, names, ref_names)
    assert ds.GetGeoTransform() == ref_ds.GetGeoTransform(), name
    assert ds.GetProjection() == ref_ds.GetProjection(), name
    assert p.shape == q.shape and np.array_equal(np.isnan(p), np.isnan(q)), name
    assert not np.isnan(p).all(), "%s: no chip classified" % name
    assert np.array_equal(p[~np.isnan(p)], q[~np.isnan(q)]), \
        "%s: probabilities differ from a direct canopy classify (max |d| %g)" % (
            name, np.nanmax(np.abs(p - q)))
    m, _, _ = L.read_masks(a["masks"])
    rm, _, _ = L.read_masks(ref_a["masks"])
    assert np.array_equal(m, rm), "%s: masks differ from a direct canopy classify" % name
    feats = sorted((lab, pr["chips"]) for lab, pr, _ in L.read_features(a["markers"]))
    ref_feats = sorted((lab, pr["chips"]) for lab, pr, _ in L.read_features(ref_a["markers"]))
    assert feats == ref_feats, (name, feats, ref_feats)


def no_outputs(out, name):
    """Nothing of scene NAME in `out`, not even a temporary file."""
    left = [f for f in os.listdir(out) if name in f] if os.path.isdir(out) else []
    assert not left, "%s: outputs of a failed scene: %s" % (name, left)


def files_state(folder):
    """{name: (inode, mtime_ns, size)} of the files of a folder, hidden ones
    (locks) left out: a rewrite, even under a temporary name renamed into
    place, changes the inode."""
    state = {}
    for f in os.listdir(folder):
        p = os.path.join(folder, f)
        if not f.startswith(".") and os.path.isfile(p):
            st = os.stat(p)
            state[f] = (st.st_ino, st.st_mtime_ns, st.st_size)
    return state


def write_list(path, scenes, relative_to=None):
    """An @list file: a comment, a blank line, scenes (relative to
    relative_to when given)."""
    with open(path, "w") as f:
        f.write("# scenes for the batch test\n\n")
        for s in scenes:
            f.write("%s\n" % (os.path.relpath(s, relative_to) if relative_to else s))
    return path


def popen_script(name, *args, **kw):
    return subprocess.Popen(["sh", script(name)] + [str(a) for a in args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
