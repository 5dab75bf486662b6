"""QGIS plugin, "Classify scene" in real headless QGIS: a raster layer in the
project through processing.runAndLoadResults with the default model,
thresholds (a matrix), markers, stride, data type, minimum valid share
and creation options; the outputs it returns exist
and are what canopy wrote for those parameters (read back with GDAL); they
open as valid layers, styled (the rasters with canopy's .qml, the markers
categorized by label); progress climbs through intermediate values to 100;
a second run is up to date and touches nothing; TTA reaches canopy; with
"open the outputs" off nothing is added to the project.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import canopytest as ct  # noqa: E402
import qgistest as Q  # noqa: E402

Q.start()
import processing  # noqa: E402
from osgeo import gdal, ogr, osr  # noqa: E402
from qgis.core import (QgsCategorizedSymbolRenderer, QgsPalettedRasterRenderer,  # noqa: E402
                       QgsProject, QgsRasterLayer, QgsSingleBandPseudoColorRenderer)


def layers_by_name():
    return {layer.name(): layer for layer in QgsProject.instance().mapLayers().values()}


def check_progress(values):
    """Progress of the run (before Processing's own loading phase): climbs,
    passes through values strictly between 0 and 100, ends at 100."""
    run = values[:values.index(100.0) + 1]
    assert run == sorted(run), run
    assert len({v for v in run if 0 < v < 100}) >= 3, run


def run():
    with ct.tmpdir() as d:
        scene = Q.make_scenes(d, [(640, 512)], seed=5)[0]
        layer = QgsRasterLayer(scene, "scene")
        assert layer.isValid()
        QgsProject.instance().addMapLayer(layer)
        out = os.path.join(d, "out")
        params = {"INPUT": layer, "CHIP": 64, "STRIDE": 32,
                  "THRESHOLDS": ["road", "0.9", "water", 0.5],
                  "MARKERS": "road, habitation, agriculture", "THREADS": 1, "PROBS_TYPE": 1,
                  "MIN_VALID": 0.25, "CREATION_OPTIONS": "COMPRESS=DEFLATE|PREDICTOR=2",
                  "OUTPUT_FOLDER": out}
        fb = Q.feedback()
        res = processing.runAndLoadResults("canopy:classifyscene", dict(params), feedback=fb)
        base = os.path.join(out, "scene_0")
        want = {"OUTPUT_FOLDER": out, "PROBS": base + ".probs.tif", "MASKS": base + ".masks.tif",
                "MARKERS_OUTPUT": base + ".markers.geojson", "MANIFEST": base + ".manifest.json"}
        assert {k: res[k] for k in want} == want, res
        for path in want.values():
            assert os.path.exists(path), path
        assert not fb.errors, fb.errors
        assert any(x.startswith(scene + ": ") and " chips " in x for x in fb.info), fb.info
        check_progress(fb.progress)

        # What canopy was asked for is what it did (manifest, GDAL).
        with open(want["MANIFEST"]) as f:
            m = json.load(f)
        p = m["parameters"]
        assert os.path.realpath(m["model"]["path"]) == os.path.realpath(os.environ["CANOPY_MODEL"])
        assert (p["chip"], p["stride"], p["tta"]) == (64, 32, False), p
        assert abs(p["thresholds"]["road"] - 0.9) < 1e-6
        assert abs(p["thresholds"]["water"] - 0.5) < 1e-6
        assert abs(p["thresholds"]["primary"] - 0.2) < 1e-6, p["thresholds"]
        assert p["markers"] == ["agriculture", "habitation", "road"], p["markers"]
        assert p["probs_type"] == "Float32", p
        assert abs(p["min_valid"] - 0.25) < 1e-6, p
        probs = gdal.Open(want["PROBS"])
        assert probs.GetRasterBand(1).DataType == gdal.GDT_Float32
        assert probs.GetMetadataItem("COMPRESSION", "IMAGE_STRUCTURE") == "DEFLATE"
        assert probs.GetMetadataItem("PREDICTOR", "IMAGE_STRUCTURE") == "2"
        labels = [probs.GetRasterBand(b + 1).GetDescription() for b in range(probs.RasterCount)]
        assert labels == p["labels"], labels

        # The layers: valid, where GDAL/OGR say, styled.
        by_name = layers_by_name()
        lp, lm, lk = (by_name.get("scene_0 " + t) for t in ("probabilities", "masks", "markers"))
        assert lp and lm and lk, sorted(by_name)
        assert lp.isValid() and lm.isValid() and lk.isValid()
        assert lp.source() == want["PROBS"] and lk.source().split("|")[0] == want["MARKERS_OUTPUT"]
        srs = osr.SpatialReference(wkt=probs.GetProjection())
        assert lp.crs().authid() == "EPSG:%s" % srs.GetAuthorityCode(None) == "EPSG:32720"
        assert lp.bandCount() == len(labels) == 17
        assert (lp.width(), lp.height()) == (probs.RasterXSize, probs.RasterYSize)
        r = lp.renderer()
        assert isinstance(r, QgsSingleBandPseudoColorRenderer) and r.band() == 1, type(r)
        shader = r.shader().rasterShaderFunction()
        assert (shader.minimumValue(), shader.maximumValue()) == (0.0, 1.0)
        r = lm.renderer()
        assert isinstance(r, QgsPalettedRasterRenderer), type(r)
        assert [c.value for c in r.classes()] == [0.0, 1.0], [c.label for c in r.classes()]
        assert r.classes()[1].label == labels[0], r.classes()[1].label
        assert lk.crs().authid() == "EPSG:4326"
        markers = ogr.Open(want["MARKERS_OUTPUT"])   # kept open while its layer is read
        n = markers.GetLayer(0).GetFeatureCount()
        assert lk.featureCount() == n > 0, (lk.featureCount(), n)
        r = lk.renderer()
        assert isinstance(r, QgsCategorizedSymbolRenderer) and r.classAttribute() == "label"
        cats = [c.value() for c in r.categories()]
        assert cats == p["markers"], cats
        assert {f["label"] for f in lk.getFeatures()} <= set(cats)
        colours = {c.symbol().color().name() for c in r.categories()}
        assert len(colours) == len(cats), colours
        print("scene: %d marker features, layers styled" % n)

        # Again, the scene as a file name: up to date, nothing rewritten.
        stamp = {f: os.stat(os.path.join(out, f)).st_mtime_ns for f in os.listdir(out)}
        params["INPUT"] = scene
        fb = Q.feedback()
        res2 = processing.run("canopy:classifyscene", dict(params), feedback=fb)
        assert {k: res2[k] for k in want} == want, res2
        assert any(x.startswith(scene + ": up to date") for x in fb.info), fb.info
        assert {f: os.stat(os.path.join(out, f)).st_mtime_ns for f in os.listdir(out)} == stamp

        # Outputs not opened when asked not to; TTA (on a small scene).
        small = os.path.join(d, "small")
        os.makedirs(small)
        params.update(INPUT=Q.make_scenes(small, [(128, 128)])[0], TTA=True, LOAD_OUTPUTS=False,
                      OUTPUT_FOLDER=os.path.join(d, "out2"))
        before = len(QgsProject.instance().mapLayers())
        res3 = processing.runAndLoadResults("canopy:classifyscene", dict(params))
        assert os.path.exists(res3["PROBS"]) and len(QgsProject.instance().mapLayers()) == before
        with open(res3["MANIFEST"]) as f:
            assert json.load(f)["parameters"]["tta"] is True
        print("second run up to date; TTA; LOAD_OUTPUTS off adds no layer")


Q.main(run)
