"""Model labels and the split-mask folder never reach files outside -o
(issue 13, items 2 and 3).

Played as the attacks:
- a model whose label is "../../victim/pwned", with --split-masks and when a
  later run cleans the previous run's split masks: the victim's files stay
  untouched, every file written is inside the scene's NAME.masks folder;
- two labels that become the same file name ("a/b" and "a_b") are refused,
  naming both, and nothing is left;
- a forged NAME.manifest.json in the output folder listing files outside it
  (and inside a linked folder): a run that replaces the scene deletes none
  of them;
- NAME.masks planted as a link to another folder, before a run and after a
  run with --split-masks: the files there stay (with and without
  --split-masks), and --split-masks refuses with a message that says so.
"""
import hashlib
import json
import os

import numpy as np
import onnx
from osgeo import gdal

import canopytest as ct
import scenes as S

gdal.UseExceptions()
GT = [500000.0, 3.0, 0.0, 8900000.0, 0.0, -3.0]


def model(path, renames):
    m = onnx.load(os.environ["CANOPY_MODEL"])
    props = {p.key: p for p in m.metadata_props}
    labels = json.loads(props["canopy.labels"].value)
    markers = json.loads(props["canopy.markers"].value)
    for i, new in renames.items():
        markers = [new if x == labels[i] else x for x in markers]
        labels[i] = new
    props["canopy.labels"].value = json.dumps(labels)
    props["canopy.markers"].value = json.dumps(markers)
    onnx.save(m, path)
    return labels


def scene(path):
    rng = np.random.default_rng(7)
    S.make_scene(path, rng.integers(0, 256, (3, 96, 128), dtype=np.uint8), GT, 32720)


def victims(folder, names):
    """Files with known content; returns {path: sha256}."""
    os.makedirs(folder, exist_ok=True)
    got = {}
    for n in names:
        p = os.path.join(folder, n)
        with open(p, "wb") as f:
            f.write(b"victim " + n.encode())
        got[p] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return got


def untouched(v):
    for p, h in v.items():
        assert os.path.isfile(p) and not os.path.islink(p), p
        assert hashlib.sha256(open(p, "rb").read()).hexdigest() == h, p


def all_files(top):
    return sorted(os.path.relpath(os.path.join(r, f), top)
                  for r, _, fs in os.walk(top) for f in fs)


def classify(*args, check=True):
    return ct.canopy("classify", "-q", "--chip", 32, "--gsd", "native", *args, check=check)


def test():
    with ct.tmpdir() as d:
        sc = os.path.join(d, "s.tif")
        scene(sc)
        v = victims(os.path.join(d, "victim"), ["pwned.tif", "pwned.qml", "keep.txt"])

        # A label that climbs out of the split folder.
        mp = os.path.join(d, "climb.onnx")
        labels = model(mp, {0: "../../victim/pwned"})
        out = os.path.join(d, "out")
        classify("-m", mp, "--split-masks", "-o", out, sc)
        untouched(v)
        files = all_files(out)
        split = [f for f in files if f.startswith("s.masks/")]
        assert len(split) == 2 * len(labels), split  # a .tif and a .qml a label
        assert all(f.count("/") == 1 and ".." not in f.split("/")[1][:2] for f in split), split
        man = json.load(open(os.path.join(out, "s.manifest.json")))
        listed = sorted(o["file"] for o in man["outputs"])
        assert listed == [f for f in files if f != "s.manifest.json"], (files, listed)
        # Again, other parameters: the previous split masks are cleaned.
        classify("-m", mp, "--min-valid", "0.7", "-o", out, sc)
        untouched(v)
        assert not [f for f in all_files(out) if f.startswith("s.masks/")], all_files(out)
        assert not os.path.exists(os.path.join(out, "s.masks"))
        print("label %r: written as %s" % (labels[0], [f for f in split if "victim" in f]))

        # Two labels, one file name: refused, naming both; nothing left.
        mp2 = os.path.join(d, "clash.onnx")
        model(mp2, {1: "a/b", 2: "a_b"})
        out2 = os.path.join(d, "out2")
        r = classify("-m", mp2, "--split-masks", "-o", out2, sc, check=False)
        assert r.returncode != 0, r.returncode
        assert "'a/b'" in r.stderr and "'a_b'" in r.stderr, r.stderr
        assert all_files(out2) == [], all_files(out2)
        print("clash:", r.stderr.strip())

        # A forged manifest listing files outside -o.
        out3 = os.path.join(d, "out3")
        os.makedirs(out3)
        forged = {"outputs": [{"file": f, "size": 1, "sha256": "0" * 64} for f in (
            "../victim/pwned.tif", os.path.join(d, "victim", "pwned.qml"),
            "s.masks/../../victim/keep.txt", "s.masks/../../victim/pwned.tif")]}
        with open(os.path.join(out3, "s.manifest.json"), "w") as f:
            json.dump(forged, f)
        classify("-o", out3, sc)
        untouched(v)
        print("forged manifest: nothing outside -o removed")

        # NAME.masks planted as a link, before any run.
        v2 = victims(os.path.join(d, "victim2"), ["agriculture.tif", "agriculture.qml", "x.txt"])
        out4 = os.path.join(d, "out4")
        os.makedirs(out4)
        os.symlink(os.path.join(d, "victim2"), os.path.join(out4, "s.masks"))
        r = classify("--split-masks", "-o", out4, sc, check=False)
        assert r.returncode == 1, (r.returncode, r.stderr)
        assert "s.masks" in r.stderr and "link" in r.stderr, r.stderr
        classify("-o", out4, sc)  # without --split-masks: not touched
        untouched(v2)
        assert sorted(os.listdir(os.path.join(d, "victim2"))) == sorted(
            os.path.basename(p) for p in v2), os.listdir(os.path.join(d, "victim2"))

        # ... and after a run with --split-masks: the link replaces the real
        # folder; the next run cleaning the old split masks leaves it alone.
        out5 = os.path.join(d, "out5")
        classify("--split-masks", "-o", out5, sc)
        real = os.path.join(out5, "s.masks")
        assert os.path.isfile(os.path.join(real, "agriculture.tif"))
        os.rename(real, real + ".old")
        os.symlink(os.path.join(d, "victim2"), real)
        classify("--min-valid", "0.7", "-o", out5, sc)
        untouched(v2)
        assert os.path.islink(real)
        r = classify("--split-masks", "--min-valid", "0.8", "-o", out5, sc, check=False)
        assert r.returncode == 1 and "link" in r.stderr, (r.returncode, r.stderr)
        untouched(v2)
        print("linked NAME.masks:", r.stderr.strip())


ct.main(test)
