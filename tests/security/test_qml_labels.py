"""Labels from a model's metadata in the QGIS styles (issue 13, item 13): a
label with "--" ended the .qml's XML comment early and made the style
invalid XML. A model whose labels hold "--", XML markup, quotes, a trailing
"-" and a lone UTF-16 surrogate (which json-c turns into bytes that are not
UTF-8, or U+FFFD) is run with --split-masks; every .qml written is parsed with
Python's XML parser, and the labels read back from the palette entries are
the model's (markup kept as text).
"""
import glob
import json
import os
import xml.etree.ElementTree as ET

import numpy as np
import onnx
from osgeo import gdal, osr

import canopytest as ct

gdal.UseExceptions()
# The loader already refuses spaces, commas and quotes in labels.
HOSTILE = ["agri--culture--><x/>&amp;-->", "bad\ud800label", "end-"]


def model(path):
    m = onnx.load(os.environ["CANOPY_MODEL"])
    props = {p.key: p for p in m.metadata_props}
    labels = json.loads(props["canopy.labels"].value)
    markers = json.loads(props["canopy.markers"].value)
    for i, new in enumerate(HOSTILE):
        old = labels[i]
        labels[i] = new
        markers = [new if x == old else x for x in markers]
    markers = list(dict.fromkeys(markers + HOSTILE))
    props["canopy.labels"].value = json.dumps(labels)  # \ud800 stays a JSON escape
    props["canopy.markers"].value = json.dumps(markers)
    onnx.save(m, path)
    return labels


def scene(path):
    ds = gdal.GetDriverByName("GTiff").Create(path, 128, 96, 3, gdal.GDT_Byte)
    ds.SetGeoTransform([500000.0, 3.0, 0.0, 8900000.0, 0.0, -3.0])
    s = osr.SpatialReference()
    s.ImportFromEPSG(32720)
    ds.SetProjection(s.ExportToWkt())
    rng = np.random.default_rng(5)
    for b in range(3):
        ds.GetRasterBand(b + 1).WriteArray(rng.integers(0, 256, (96, 128), dtype=np.uint8))
    ds = None


def test():
    with ct.tmpdir() as d:
        mp = os.path.join(d, "hostile.onnx")
        labels = model(mp)
        sc = os.path.join(d, "s.tif")
        scene(sc)
        out = os.path.join(d, "out")
        ct.canopy("classify", "-q", "-m", mp, "--chip", 32, "--gsd", "native", "--split-masks",
                  "-o", out, sc)
        qmls = sorted(glob.glob(os.path.join(out, "**", "*.qml"), recursive=True))
        assert len(qmls) >= 2 + len(labels), qmls
        seen = set()
        for q in qmls:
            with open(q, "rb") as f:
                data = f.read()
            try:
                root = ET.fromstring(data)
            except ET.ParseError as e:
                raise AssertionError("%s is not well-formed XML: %s\n%s" % (q, e, data[:600]))
            for e in root.iter("paletteEntry"):
                if e.get("value") == "1":
                    seen.add(e.get("label"))
        want = {HOSTILE[0], HOSTILE[2]}
        assert want <= seen, (want - seen, seen)
        # json-c decodes the lone surrogate to U+FFFD, or bytes that the
        # writer turns into '?': either way text between "bad" and "label".
        assert [x for x in seen if x.startswith("bad") and x.endswith("label")], seen
        print("%d styles parsed; hostile labels read back: %r" % (len(qmls), sorted(want)))


ct.main(test)
