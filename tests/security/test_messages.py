"""Messages that blamed the wrong thing (issue 13, item 13): a scene name
too long for the file system, and a creation option the driver refuses,
were both reported as a lack of free space. Each now names the real reason
and what to do: the long name fails its scene (exit 1) with the file
system's limit, the bad -co is a usage error (exit 2) before any work,
naming the option; neither mentions free space, neither leaves a file.
"""
import os

import numpy as np
from osgeo import gdal, osr

import canopytest as ct

gdal.UseExceptions()


def scene(path):
    ds = gdal.GetDriverByName("GTiff").Create(path, 64, 64, 3, gdal.GDT_Byte)
    ds.SetGeoTransform([500000.0, 3.0, 0.0, 8900000.0, 0.0, -3.0])
    s = osr.SpatialReference()
    s.ImportFromEPSG(32720)
    ds.SetProjection(s.ExportToWkt())
    ds.GetRasterBand(1).WriteArray(np.full((64, 64), 80, np.uint8))
    ds = None


def files_in(d):
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def test():
    with ct.tmpdir() as d:
        # 245 + ".tif" fits the 255-byte limit; 245 + ".manifest.json" does not.
        long = os.path.join(d, "x" * 245 + ".tif")
        scene(long)
        ok = os.path.join(d, "ok.tif")
        scene(ok)
        out = os.path.join(d, "out")
        r = ct.canopy("classify", "-q", "--chip", 32, "-o", out, long, ok, check=False)
        assert r.returncode == 1, (r.returncode, r.stderr)
        assert "longer than the file system allows" in r.stderr and "shorter" in r.stderr, r.stderr
        assert "free space" not in r.stderr, r.stderr
        left = files_in(out)
        assert all(not f.startswith("x") for f in left), left
        assert "ok.manifest.json" in left, left  # the rest of the batch is done
        print("long name:", r.stderr.strip())

        for co, words in ((["-co", "BLOCKXSIZE=17"], ["multiple of 16"]),
                          (["-co", "COMPRESS=BOGUS"], ["BOGUS", "COMPRESS", "gdalinfo --format GTiff"]),
                          (["-of", "COG", "-co", "PREDICTOR=MAYBE"], ["MAYBE", "PREDICTOR"])):
            o2 = os.path.join(d, "out-co")
            r = ct.canopy("classify", "-q", "--chip", 32, "-o", o2, *co, ok, check=False)
            assert r.returncode == 2, (co, r.returncode, r.stderr)
            for w in words:
                assert w in r.stderr, (w, r.stderr)
            assert "free space" not in r.stderr, r.stderr
            assert files_in(o2) == [], files_in(o2)
            print("%s: %s" % (" ".join(co), r.stderr.strip()))


ct.main(test)
