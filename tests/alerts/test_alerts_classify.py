"""canopy classify --alerts DIR: every scene added to the alert state after
its outputs; the scene_done event's "alerts" object and "date", the
manifest's acquisition date and alerts line, NAME.alerts.geojson as output
"alerts", one alerts line per scene on stderr; a scene skipped as up to date
changes nothing; a scene without a date is an error naming the ways to give
one; alert options without --alerts are a usage error."""
import json
import os

import numpy as np
from osgeo import gdal

import alertslib as al
from canopytest import canopy, main, tmpdir

gdal.UseExceptions()


def scene(path, seed, date_meta=None):
    rng = np.random.default_rng(seed)
    d = gdal.GetDriverByName("GTiff").Create(path, 512, 512, 3, gdal.GDT_Byte)
    d.SetGeoTransform((606693.0, 3.0, 0.0, 8952783.0, 0.0, -3.0))
    d.SetProjection(al.wkt(al.EPSG))
    if date_meta:
        d.SetMetadataItem("TIFFTAG_DATETIME", date_meta)
    for b in range(3):
        d.GetRasterBand(b + 1).WriteArray(rng.integers(20, 120, (512, 512), dtype=np.uint8))
    d = None
    return path


def events(stdout):
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test():
    with tmpdir() as t:
        j = lambda n: os.path.join(t, n)
        os.mkdir(j("in"))
        scene(j("in/a_20260105.tif"), 1)
        scene(j("in/b.tif"), 2, "2026:01:26 10:00:00")
        state, out = j("state"), j("out")
        p = canopy("classify", "--progress=jsonl", "--alerts", state, "-o", out, j("in"))
        done = [e for e in events(p.stdout) if e["event"] == "scene_done"]
        assert [e["date"] for e in done] == ["2026-01-05", "2026-01-26"], done
        for e in done:
            a = e["alerts"]
            assert set(a) >= {"new", "confirmed", "dismissed", "labels_new", "area_m2", "summary",
                              "state"}, a
            assert a["state"] == state and "new alert" in a["summary"], a
            assert os.path.exists(e["outputs"]["alerts"]), e["outputs"]
            m = json.load(open(e["outputs"]["manifest"]))
            assert m["acquisition"]["date"] == e["date"], m.get("acquisition")
            assert m["alerts"]["summary"] == a["summary"], m.get("alerts")
        assert p.stderr.count(": alerts: ") == 2, p.stderr
        s = json.load(open(os.path.join(state, "state.json")))
        assert [x["id"] for x in s["scenes"]] == ["a_20260105", "b"], s["scenes"]
        assert os.path.exists(os.path.join(state, "alerts.tif"))

        before = open(os.path.join(state, "state.json"), "rb").read()
        p = canopy("classify", "--progress=jsonl", "--alerts", state, "-o", out, j("in"))
        done = [e for e in events(p.stdout) if e["event"] == "scene_done"]
        assert all(e["status"] == "skipped" for e in done), done
        assert open(os.path.join(state, "state.json"), "rb").read() == before

        scene(j("nodate.tif"), 3)
        p = canopy("classify", "--progress=jsonl", "--alerts", state, "-o", out, j("nodate.tif"),
                   check=False)
        err = [e for e in events(p.stdout) if e["event"] == "scene_error"]
        assert p.returncode == 1 and err and "--date" in err[0]["message"] and \
            "TIFFTAG_DATETIME" in err[0]["message"], (p.returncode, p.stdout)
        assert not os.path.exists(os.path.join(out, "nodate.probs.tif"))
        p = canopy("classify", "--date", "2026-02-16", "--alerts", state, "-o", out,
                   j("nodate.tif"))
        assert "alerts:" in p.stderr, p.stderr
        p = canopy("classify", "--alerts-baseline", "3", "-o", out, j("nodate.tif"), check=False)
        assert p.returncode == 2 and "--alerts" in p.stderr, (p.returncode, p.stderr)


main(test)
