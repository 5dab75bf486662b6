"""A scene's acquisition date (canopy alerts date, and canopy alerts add):
from GDAL metadata (TIFFTAG_DATETIME, ACQUISITIONDATETIME), a PlanetScope
*_metadata.json beside the scene, the file name (Sentinel-2, PlanetScope,
Landsat patterns, invalid dates skipped), else --date; without any, a message
naming the three ways to give one."""
import json
import os

import numpy as np
from osgeo import gdal

import alertslib as al
from canopytest import canopy, main, tmpdir

gdal.UseExceptions()


def raster(path, meta=None):
    d = gdal.GetDriverByName("GTiff").Create(path, 4, 4, 1, gdal.GDT_Byte)
    d.SetGeoTransform(al.GT)
    d.SetProjection(al.wkt(al.EPSG))
    for k, v in (meta or {}).items():
        d.SetMetadataItem(k, v)
    d = None
    return path


def date_of(path, *extra):
    p = canopy("alerts", "date", *extra, path)
    f = p.stdout.strip().split("\t")
    return f[1], f[2], f[3]


def test():
    with tmpdir() as t:
        j = lambda n: os.path.join(t, n)
        assert date_of(raster(j("x_20240101.tif"), {"TIFFTAG_DATETIME": "2025:07:14 10:11:12"})) \
            == ("2025-07-14", "metadata", "TIFFTAG_DATETIME")
        assert date_of(raster(j("acq.tif"), {"ACQUISITIONDATETIME": "2025-08-01T23:59:59Z"})) \
            == ("2025-08-01", "metadata", "ACQUISITIONDATETIME")
        s2 = raster(j("S2A_MSIL2A_20230105T134201_N0509_R124_T21LXK_20230110T172405.tif"))
        assert date_of(s2) == ("2023-01-05", "filename", "20230105T134201"), date_of(s2)
        ls = raster(j("LC08_L2SP_227067_20230305_20230310_02_T1.tif"))
        assert date_of(ls) == ("2023-03-05", "filename", "20230305")
        ps = raster(j("20230210_134201_12_2403_3B_AnalyticMS_SR.tif"))
        assert date_of(ps) == ("2023-02-10", "filename", "20230210_134201")
        with open(j("20230210_134201_12_2403_metadata.json"), "w") as f:
            json.dump({"type": "Feature", "properties": {"acquired": "2023-02-11T01:02:03.5Z"}}, f)
        assert date_of(ps) == ("2023-02-11", "planet-metadata",
                               "20230210_134201_12_2403_metadata.json"), date_of(ps)
        bad = raster(j("scene_20231399_20240230_x.tif"))
        assert date_of(bad, "--date", "2024-01-02") == ("2024-01-02", "given", "--date")
        assert date_of(raster(j("leap_20240229.tif")))[0] == "2024-02-29"
        p = canopy("alerts", "date", bad, check=False)
        assert p.returncode == 1, p.returncode
        for what in ("TIFFTAG_DATETIME", "file name", "--date YYYY-MM-DD", bad):
            assert what in p.stderr, "'%s' not in: %s" % (what, p.stderr)
        p = canopy("alerts", "date", "--date", "2024-13-01", bad, check=False)
        assert p.returncode == 2 and "YYYY-MM-DD" in p.stderr, (p.returncode, p.stderr)

        # Usage errors: exit 2 and a hint.
        for argv in (["alerts"], ["alerts", "add", j("state")], ["alerts", "bogus", j("state")],
                     ["alerts", "add", "--alerts-baseline", "0", j("state"), bad],
                     ["alerts", "rebuild", j("state"), bad]):
            p = canopy(*argv, check=False)
            assert p.returncode == 2 and "canopy alerts" in p.stderr, (argv, p.returncode, p.stderr)
        assert "Usage: canopy alerts add" in canopy("alerts", "--help").stdout

        # alerts add: a raster without a date is an error naming the three ways.
        probs = j("nodate.probs.tif")
        al.write_probs(probs, {lab: np.full((al.ROWS, al.COLS), 0.1) for lab in al.LABELS})
        p = canopy("alerts", "add", j("state"), probs, check=False)
        assert p.returncode == 1 and "no acquisition date" in p.stderr and "--date" in p.stderr, \
            p.stderr
        assert not os.path.exists(j("state/state.json"))
        p = canopy("alerts", "add", "--date", "2026-02-03", j("state"), probs)
        s = json.load(open(j("state/state.json")))
        assert s["scenes"][0]["date"] == "2026-02-03" and s["scenes"][0]["id"] == "nodate", s
        # --scene: the date of the scene the probabilities came from.
        probs2 = j("other.probs.tif")
        al.write_probs(probs2, {lab: np.full((al.ROWS, al.COLS), 0.1) for lab in al.LABELS})
        canopy("alerts", "add", "--scene", s2, j("state"), probs2)
        s = json.load(open(j("state/state.json")))
        assert [(x["id"], x["date"]) for x in s["scenes"]] == \
            [("other", "2023-01-05"), ("nodate", "2026-02-03")], s["scenes"]


main(test)
