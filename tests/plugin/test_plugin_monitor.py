"""QGIS plugin, "Monitor area" in real headless QGIS: a time series of one
area (four scenes whose file names carry their dates) added through
processing.runAndLoadResults; canopy ran `classify --alerts DIR`; the new,
confirmed and dismissed counts in the results equal the sums of the
"alerts" objects of canopy's own scene_done events for the same command run
again on a copy of the state as it was (read with Python's json module);
DIR/alerts.tif and DIR/alerts.geojson exist, open in the project as valid
layers where GDAL/OGR say, the raster with canopy's alerts.qml (the same
renderer QGIS builds from that file itself), the GeoJSON categorized by
confidence with GFW's colours; the log has canopy's per-scene alert lines.
The same scenes again change nothing (0 new, confirmed, dismissed); a run
with one new scene given as a raster layer and an acquisition date adds it. Skips (77) only when canopy has no `classify --alerts`.
"""
import json
import os
import shlex
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import canopytest as ct  # noqa: E402
import qgistest as Q  # noqa: E402

if "--alerts" not in ct.canopy("classify", "--help").stdout:
    print("SKIP: this canopy has no classify --alerts (monitoring is not in this build); "
          "Monitor area needs it")
    sys.exit(ct.SKIP)

Q.start()
import processing  # noqa: E402
from osgeo import gdal, ogr  # noqa: E402
from qgis.core import (QgsCategorizedSymbolRenderer, QgsProject,  # noqa: E402
                       QgsRasterLayer)

DATES = ("20260105", "20260121", "20260206", "20260222")


def events_of(command):
    """canopy's events for a command line the plugin ran."""
    p = ct.run(shlex.split(command), check=False)
    assert p.returncode in (0, 1), (p.returncode, p.stderr)
    return [json.loads(x) for x in p.stdout.splitlines()]


def alert_sums(events):
    sums = {"new": 0, "confirmed": 0, "dismissed": 0}
    for e in events:
        if e["event"] == "scene_done" and "alerts" in e:
            for k in sums:
                sums[k] += e["alerts"][k]
    return sums


def run():
    with ct.tmpdir() as d:
        inbox = os.path.join(d, "inbox")
        os.makedirs(inbox)
        for i, (path, date) in enumerate(zip(Q.make_scenes(inbox, [(256, 256)] * 4, seed=41),
                                              DATES)):
            os.rename(path, os.path.join(inbox, "area_%s.tif" % date))
        state = os.path.join(d, "alerts")
        out = os.path.join(d, "out")
        params = {"FOLDER": inbox, "ALERTS": state, "CHIP": 64, "THREADS": 1,
                  "OUTPUT_FOLDER": out}
        fb = Q.feedback()
        res = processing.runAndLoadResults("canopy:monitorarea", dict(params), feedback=fb)
        assert not fb.errors, fb.errors
        command = fb.commands[-1]
        assert " --alerts " + state in command, command

        # The same command on a fresh state and output folder: canopy's own counts.
        again = command.replace(state, os.path.join(d, "alerts2")).replace(out,
                                                                           os.path.join(d, "o2"))
        sums = alert_sums(events_of(again))
        assert (res["NEW"], res["CONFIRMED"], res["DISMISSED"]) == (
            sums["new"], sums["confirmed"], sums["dismissed"]), (res, sums)
        assert res["ALERTS_RASTER"] == os.path.join(state, "alerts.tif"), res
        assert res["ALERTS_VECTOR"] == os.path.join(state, "alerts.geojson"), res
        assert any(x.startswith("Alerts: %d new" % sums["new"]) for x in fb.info), fb.info

        layers = {layer.name(): layer for layer in QgsProject.instance().mapLayers().values()}
        raster = layers.get("alerts alerts by date")
        vector = layers.get("alerts alerts")
        assert raster and vector and raster.isValid() and vector.isValid(), sorted(layers)
        ds = gdal.Open(res["ALERTS_RASTER"])
        assert raster.bandCount() == ds.RasterCount and raster.width() == ds.RasterXSize
        reference = QgsRasterLayer(res["ALERTS_RASTER"], "reference")
        message, ok = reference.loadNamedStyle(os.path.join(state, "alerts.qml"))
        assert ok, message
        assert type(raster.renderer()) is type(reference.renderer()), (
            type(raster.renderer()), type(reference.renderer()))
        src = ogr.Open(res["ALERTS_VECTOR"])
        n = src.GetLayer(0).GetFeatureCount()
        assert vector.featureCount() == n, (vector.featureCount(), n)
        r = vector.renderer()
        assert isinstance(r, QgsCategorizedSymbolRenderer) and r.classAttribute() == "confidence"
        cats = {c.value(): c.symbol().color().name() for c in r.categories()}
        assert cats["unconfirmed"] == "#eda4c3" and cats["confirmed"] == "#c92a6d", cats
        found = {f["confidence"] for f in vector.getFeatures()}
        assert found <= set(cats), (found, cats)
        print("monitor: 4 scenes, %d new, %d confirmed, %d dismissed; %d alert regions; layers "
              "styled" % (res["NEW"], res["CONFIRMED"], res["DISMISSED"], n))

        # The same scenes again: already in the state, nothing new.
        res2 = processing.run("canopy:monitorarea", dict(params, LOAD_OUTPUTS=False),
                              feedback=Q.feedback())
        assert (res2["NEW"], res2["CONFIRMED"], res2["DISMISSED"]) == (0, 0, 0), res2

        # One more scene, as a layer without a date in its name: the date parameter.
        extra = Q.make_scenes(os.path.join(d), [(256, 256)], seed=77)[0]
        layer = QgsRasterLayer(extra, "new scene")
        fb = Q.feedback()
        res = processing.run("canopy:monitorarea", {
            "INPUT": layer, "DATE": "2026-03-10", "ALERTS": state, "CHIP": 64, "THREADS": 1,
            "OUTPUT_FOLDER": out, "LOAD_OUTPUTS": False}, feedback=fb)
        assert " --date 2026-03-10 " in fb.commands[-1], fb.commands
        assert isinstance(res["NEW"], int), res
        print("monitor: a fifth scene with its date given: %s" % res["SUMMARY"])


Q.main(run)
