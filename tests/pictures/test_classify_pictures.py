"""canopy classify writes NAME.quicklook.png (+ .pgw, .aux.xml) and
NAME.stac.json beside the other outputs and lists them in the manifest;
--no-quicklook writes neither; --record-failures leaves NAME.failed.json for a
scene that failed (nothing without it), removed when the scene succeeds; the
report of the folder shows both."""
import json
import os
import shutil

import numpy as np

from osgeo import gdal

import canopytest as ct
import pictest as pt


def main():
    with ct.tmpdir() as d:
        out = os.path.join(d, "out")
        # 1.5 scene pixels per quick-look pixel: drawn from the tiler's
        # preview, the box where the scene has it.
        scene = pt.make_scene(os.path.join(d, "s.tif"), 1536, 1152)
        ct.canopy("classify", "-q", "-o", out, scene)
        names = set(os.listdir(out))
        for suffix in (".quicklook.png", ".quicklook.pgw", ".quicklook.png.aux.xml", ".stac.json"):
            assert "s" + suffix in names, (suffix, sorted(names))
        m = json.load(open(os.path.join(out, "s.manifest.json")))
        listed = {o["file"] for o in m["outputs"]}
        assert {"s.quicklook.png", "s.quicklook.pgw", "s.stac.json"} <= listed, listed
        ql = gdal.Open(os.path.join(out, "s.quicklook.png"))
        assert (ql.RasterXSize, ql.RasterYSize) == (1024, 768)
        rgb = pt.read_rgb(os.path.join(out, "s.quicklook.png")).astype(int)
        x0, y0, x1, y1 = pt.MAGENTA_BOX
        inner = rgb[int(y0 * 768) + 2:int(y1 * 768) - 2, int(x0 * 1024) + 2:int(x1 * 1024) - 2]
        magenta = (np.abs(inner - (255, 0, 255)).max(axis=2) < 60).mean()
        assert magenta > 0.9, "the scene's box is not where it is (%.2f magenta)" % magenta
        left = rgb[:, :int(x0 * 1024) - 4]
        stray = (np.abs(left - (255, 0, 255)).max(axis=2) < 60).mean()
        assert stray < 0.01, "magenta where the scene has none (%.3f)" % stray
        item = json.load(open(os.path.join(out, "s.stac.json")))
        assert item["properties"]["canopy:model"] == m["model"]["name"]
        assert item["assets"]["manifest"]["href"] == "./s.manifest.json"
        # A second run is up to date: the quick-look is checked with the rest.
        r = ct.canopy("classify", "-o", out, scene)
        assert "up to date" in r.stdout, r.stdout

        out2 = os.path.join(d, "out2")
        ct.canopy("classify", "-q", "--no-quicklook", "-o", out2, scene)
        assert not [n for n in os.listdir(out2) if "quicklook" in n or "stac" in n], os.listdir(out2)

        # A scene that fails: nothing without --record-failures, a record with.
        bad = os.path.join(d, "bad.tif")
        with open(bad, "wb") as f:
            f.write(b"II*\0garbage")
        p = ct.canopy("classify", "-q", "-o", out, bad, check=False)
        assert p.returncode == 1 and not [n for n in os.listdir(out) if n.startswith("bad")]
        p = ct.canopy("classify", "-q", "--record-failures", "-o", out, bad, check=False)
        assert p.returncode == 1
        rec = json.load(open(os.path.join(out, "bad.failed.json")))
        assert rec["canopy_failure"] == 1 and rec["status"] in ("io", "format"), rec
        assert rec["message"] in p.stderr, (rec["message"], p.stderr)
        assert sorted(n for n in os.listdir(out) if n.startswith("bad")) == ["bad.failed.json"]
        ct.canopy("report", out, "-q")
        page = open(os.path.join(out, "report.html"), encoding="utf-8").read()
        assert page.index(">bad<") < page.index(">s<"), "the failure is not first"
        # The scene mended: it succeeds, and its failure record goes.
        shutil.copy(scene, bad)
        ct.canopy("classify", "-q", "--record-failures", "-o", out, bad)
        assert not os.path.exists(os.path.join(out, "bad.failed.json"))
        pt.no_temporaries(out)


ct.main(main)
