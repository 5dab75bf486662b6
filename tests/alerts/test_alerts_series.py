"""The monitoring demo end to end: make-demo-data --series (dates in names
and TIFFTAG_DATETIME, one date in the next UTM zone, ground truth consistent
with its events), classified with the demo model and measured by
scripts/alerts-eval; the same scenes delivered in reverse order give the
same alerts.tif."""
import json
import os

import numpy as np
from osgeo import gdal, osr

import alertslib as al
from canopytest import CANOPY, PYTHON3, canopy, main, run, script, tmpdir

gdal.UseExceptions()


def epsg_of(path):
    s = osr.SpatialReference(wkt=gdal.Open(path).GetProjection())
    s.AutoIdentifyEPSG()
    return int(s.GetAuthorityCode(None))


def test():
    with tmpdir() as t:
        series = os.path.join(t, "series")
        run([PYTHON3, script("make-demo-data"), "--series", series, "--size", "2048", "--seed", "1",
             "-q"])
        truth = json.load(open(os.path.join(series, "truth.json")))
        assert len(truth["scenes"]) == 7 and len(truth["events"]) == 8, truth
        for k, s in enumerate(truth["scenes"]):
            path = os.path.join(series, s["scene"])
            out = canopy("alerts", "date", path).stdout.split("\t")
            assert out[1] == s["date"] and out[2] == "metadata", out
            assert s["date"].replace("-", "") in os.path.basename(path), path
            assert epsg_of(path) == (32722 if k == 4 else 32721), (path, epsg_of(path))
        d = gdal.Open(os.path.join(series, "truth", "appear.tif"))
        names = [d.GetRasterBand(b + 1).GetDescription() for b in range(d.RasterCount)]
        appear = d.ReadAsArray()
        for e in truth["events"]:
            for r, c in e["cells"]:
                v = appear[names.index(e["label"]), r, c]
                assert v == e["appears_index"] + 1, (e, v)

        res = os.path.join(t, "eval.json")
        p = run([PYTHON3, script("alerts-eval"), series, "--canopy", CANOPY, "--json", res])
        print(p.stdout)
        m = json.load(open(res))
        assert m["region"]["recall"] >= 5 / 7.0, m["region"]
        assert m["area"]["recall"] >= 0.75, m["area"]
        assert all(not e["alert_at_end"] for e in m["transient"]), m["transient"]
        assert m["delay_obs"]["median_to_confirmed"] is not None and \
            m["delay_obs"]["median_to_confirmed"] <= 2, m["delay_obs"]

        # Late delivery on real outputs, the other-zone scene included.
        out = os.path.join(series, "eval", "out")
        rev = os.path.join(t, "reverse")
        probs = sorted(os.path.join(out, f) for f in os.listdir(out) if f.endswith(".probs.tif"))
        canopy("alerts", "add", "--no-changes", rev, *reversed(probs))
        l1, a1 = al.read_alerts(os.path.join(series, "eval", "state"))
        l2, a2 = al.read_alerts(rev)
        assert l1 == l2 and np.array_equal(a1, a2), "reverse delivery gave other alerts"


main(test)
