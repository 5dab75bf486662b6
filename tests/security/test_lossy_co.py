"""Lossy creation options (issue 13, item 8): with -co COMPRESS=JPEG the
masks flipped pixels and disagreed with the GeoJSON and the manifest.
Lossy -co (JPEG, WEBP, LERC with MAX_Z_ERROR > 0, NBITS, ...) are refused as
a usage error before any work, naming the option and what to do; with
--lossy-probs they apply to the probabilities only, the masks stay
lossless (identical, pixel for pixel, to a run without -co, read with GDAL)
and the manifest records lossy_probs.
"""
import json
import os

import numpy as np
from osgeo import gdal, osr

import canopytest as ct

gdal.UseExceptions()


def scene(path):
    rng = np.random.default_rng(3)
    ds = gdal.GetDriverByName("GTiff").Create(path, 256, 192, 3, gdal.GDT_Byte)
    ds.SetGeoTransform([500000.0, 3.0, 0.0, 8900000.0, 0.0, -3.0])
    s = osr.SpatialReference()
    s.ImportFromEPSG(32720)
    ds.SetProjection(s.ExportToWkt())
    for b in range(3):
        ds.GetRasterBand(b + 1).WriteArray(rng.integers(0, 256, (192, 256), dtype=np.uint8))
    ds = None


def compression(path):
    return gdal.Open(path).GetMetadata("IMAGE_STRUCTURE").get("COMPRESSION")


def test():
    with ct.tmpdir() as d:
        sc = os.path.join(d, "s.tif")
        scene(sc)
        base = ["classify", "-q", "--chip", 32, "--gsd", "native"]
        refused = [(["-co", "COMPRESS=JPEG"], "COMPRESS=JPEG is lossy"),
                   (["-co", "COMPRESS=WEBP"], "COMPRESS=WEBP without WEBP_LOSSLESS=YES"),
                   (["-co", "COMPRESS=LERC_DEFLATE", "-co", "MAX_Z_ERROR=0.5"],
                    "MAX_Z_ERROR=0.5 is lossy"),
                   (["-co", "NBITS=1"], "NBITS=1"),
                   (["-of", "COG", "-co", "COMPRESS=JPEG", "-co", "QUALITY=95"],
                    "COMPRESS=JPEG is lossy")]
        for co, words in refused:
            out = os.path.join(d, "refused")
            r = ct.canopy(*base, "-o", out, *co, sc, check=False)
            assert r.returncode == 2, (co, r.returncode, r.stderr)
            for w in (words, "--lossy-probs", "lossless"):
                assert w in r.stderr, "%r not in %r" % (w, r.stderr)
            assert not os.path.exists(out) or os.listdir(out) == [], os.listdir(out)
            print("refused %s: %s" % (" ".join(co), r.stderr.strip()))

        # Lossless references, then --lossy-probs with JPEG.
        ref = os.path.join(d, "ref")
        ct.canopy(*base, "-o", ref, sc)
        lossy = os.path.join(d, "lossy")
        ct.canopy(*base, "-o", lossy, "--lossy-probs", "-co", "COMPRESS=JPEG", "-co",
                  "JPEG_QUALITY=50", sc)
        assert compression(os.path.join(lossy, "s.probs.tif")) == "JPEG"
        assert compression(os.path.join(lossy, "s.masks.tif")) == "DEFLATE", \
            compression(os.path.join(lossy, "s.masks.tif"))
        a = gdal.Open(os.path.join(ref, "s.masks.tif")).ReadAsArray()
        b = gdal.Open(os.path.join(lossy, "s.masks.tif")).ReadAsArray()
        assert np.array_equal(a, b), "masks differ: %d cells" % int((a != b).sum())
        with open(os.path.join(lossy, "s.manifest.json")) as f:
            m = json.load(f)
        params = m.get("parameters", m)
        assert params.get("lossy_probs") is True, params
        with open(os.path.join(ref, "s.manifest.json")) as f:
            m = json.load(f)
        assert m.get("parameters", m).get("lossy_probs") is False


ct.main(test)
