"""Scenes with nothing to classify (issue 13, item 10): a scene whose every
pixel is nodata, and a scene smaller than one chip, used to fail with exit 1,
so that a nightly inbox kept them and retried them every night. Each is now
a scene done: exit 0, one warning line naming the file and the reason (the
small scene's no longer blames nodata), masks of 255 (not classified), an
empty GeoJSON FeatureCollection, and a manifest saying 0 chips classified
and why; the JSONL stream says ok and carries the warning. Read back with
GDAL and OGR, not with canopy.
"""
import json
import os

import numpy as np
from osgeo import gdal, ogr

import canopytest as ct
import scenes as S

gdal.UseExceptions()
GT = [500000.0, 3.0, 0.0, 8900000.0, 0.0, -3.0]


def scene(path, w, h, value, nodata=None):
    S.make_scene(path, np.full((3, h, w), value, np.uint8), GT, 32720, nodata=nodata)


def check_outputs(out, name, why):
    m = json.load(open(os.path.join(out, name + ".manifest.json")))
    assert m["chips"]["classified"] == 0, m["chips"]
    assert m["chips"]["none_classified"] == why, m["chips"]
    assert m["marker_features"] == 0, m["marker_features"]
    assert all(v == 0 for v in m["positive_chips"].values()), m["positive_chips"]
    listed = sorted(o["file"] for o in m["outputs"])
    for f in listed:
        assert os.path.isfile(os.path.join(out, f)), f

    ds = gdal.Open(os.path.join(out, name + ".masks.tif"))
    rows, cols = m["grid"]["rows"], m["grid"]["cols"]
    assert (ds.RasterXSize, ds.RasterYSize) == (cols, rows), (ds.RasterXSize, cols, rows)
    for b in range(ds.RasterCount):
        a = ds.GetRasterBand(b + 1).ReadAsArray()
        assert (a == 255).all(), (b, np.unique(a))
    ds = None
    ds = gdal.Open(os.path.join(out, name + ".probs.tif"))
    nd = ds.GetRasterBand(1).GetNoDataValue()
    assert (ds.GetRasterBand(1).ReadAsArray() == nd).all()
    ds = None

    path = os.path.join(out, name + ".markers.geojson")
    fc = json.load(open(path))
    assert fc["type"] == "FeatureCollection" and fc["features"] == [], fc
    src = ogr.Open(path)
    assert src is not None and src.GetLayer(0).GetFeatureCount() == 0


def test():
    with ct.tmpdir() as d:
        empty = os.path.join(d, "empty.tif")
        scene(empty, 100, 100, 0, nodata=0)
        small = os.path.join(d, "small.tif")
        scene(small, 20, 12, 90)
        out = os.path.join(d, "out")
        for path, name, why, words in (
                (empty, "empty", "all nodata", ["nodata", "--min-valid"]),
                (small, "small", "smaller than one chip", ["20 x 12", "smaller than one chip",
                                                           "--chip"])):
            r = ct.canopy("classify", "--chip", 32, "-o", out, path, check=False)
            assert r.returncode == 0, (r.returncode, r.stderr)
            warn = [l for l in r.stderr.splitlines() if "warning" in l]
            assert len(warn) == 1, r.stderr
            for w in [os.path.basename(path)] + words:
                assert w in warn[0], (w, warn[0])
            if name == "small":
                assert "nodata" not in warn[0], warn[0]
            check_outputs(out, name, why)
            print("%s: %s" % (name, warn[0]))

            # A second run: up to date, not retried.
            r = ct.canopy("classify", "--chip", 32, "-o", out, path, check=False)
            assert r.returncode == 0 and "up to date" in r.stdout, (r.returncode, r.stdout)

        # The event stream: scene_done ok, the warning as an event.
        out2 = os.path.join(d, "out2")
        r = ct.canopy("classify", "--chip", 32, "--progress=jsonl", "-o", out2, empty, small,
                      check=False)
        assert r.returncode == 0, (r.returncode, r.stderr)
        ev = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
        done = [e for e in ev if e["event"] == "scene_done"]
        assert [e["status"] for e in done] == ["ok", "ok"], done
        assert [e["chips"]["classified"] for e in done] == [0, 0], done
        warns = [e for e in ev if e["event"] == "warning"]
        assert len(warns) == 2 and all(e.get("scene") for e in warns), warns
        end = [e for e in ev if e["event"] == "run_done"][0]
        assert end["ok"] == 2 and end["failed"] == 0 and end["exit"] == 0, end


ct.main(test)
