"""Marker regions that cannot all be transformed to EPSG:4326 (issue 13,
item 11): a geostationary full-disk scene has corners off the globe, and a
region touching them failed the whole scene. Every chip is made a marker
(--threshold agriculture=0), so one region covers the disk and runs off it.
canopy now exits 0, writes the chips whose corners are on the globe, and
warns once with the number of chips left out; that number is checked
against an independent count (each cell's four corners transformed with
OSR), and the GeoJSON is read with OGR: valid geometries, in lon/lat range,
inside the visible disk.
"""
import os
import re

import numpy as np
from osgeo import gdal, ogr, osr

import canopytest as ct

gdal.UseExceptions()
ogr.UseExceptions()
GEOS = "+proj=geos +h=35785831 +lon_0=0 +sweep=y +ellps=WGS84 +units=m +no_defs"
N, PX, CHIP = 120, 100000.0, 10
X0 = -N * PX / 2


def scene(path):
    ds = gdal.GetDriverByName("GTiff").Create(path, N, N, 3, gdal.GDT_Byte)
    ds.SetGeoTransform([X0, PX, 0.0, -X0, 0.0, -PX])
    s = osr.SpatialReference()
    s.ImportFromProj4(GEOS)
    ds.SetProjection(s.ExportToWkt())
    rng = np.random.default_rng(2)
    for b in range(3):
        ds.GetRasterBand(b + 1).WriteArray(rng.integers(1, 256, (N, N), dtype=np.uint8))
    ds = None


def off_globe_cells():
    src = osr.SpatialReference()
    src.ImportFromProj4(GEOS)
    dst = osr.SpatialReference()
    dst.ImportFromEPSG(4326)
    dst.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    ct_ = osr.CoordinateTransformation(src, dst)
    step = CHIP * PX
    n = N // CHIP

    def ok(x, y):
        try:
            lon, lat, _ = ct_.TransformPoint(x, y)
        except RuntimeError:
            return False
        return np.isfinite(lon) and np.isfinite(lat)

    bad = 0
    for r in range(n):
        for c in range(n):
            xs = (X0 + c * step, X0 + (c + 1) * step)
            ys = (-X0 - r * step, -X0 - (r + 1) * step)
            if not all(ok(x, y) for x in xs for y in ys):
                bad += 1
    return bad, n * n


def test():
    with ct.tmpdir() as d:
        sc = os.path.join(d, "disk.tif")
        scene(sc)
        out = os.path.join(d, "out")
        r = ct.canopy("classify", "--gsd", "native", "--chip", CHIP, "--threshold",
                      "agriculture=0", "--markers", "agriculture", "-o", out, sc, check=False)
        assert r.returncode == 0, (r.returncode, r.stderr)
        bad, total = off_globe_cells()
        assert 0 < bad < total, (bad, total)
        warn = [l for l in r.stderr.splitlines() if "warning" in l]
        assert len(warn) == 1, r.stderr
        m = re.search(r"(\d+) marker chips? left out", warn[0])
        assert m and int(m.group(1)) == bad, (warn[0], bad)
        assert "disk.tif" in warn[0] and "masks" in warn[0], warn[0]
        ds = ogr.Open(os.path.join(out, "disk.markers.geojson"))
        lyr = ds.GetLayer(0)
        feats = list(lyr)
        assert feats, "no features written"
        chips = 0
        for f in feats:
            g = f.GetGeometryRef()
            assert g.IsValid(), g.ExportToWkt()[:200]
            minx, maxx, miny, maxy = g.GetEnvelope()
            assert -82 < minx and maxx < 82 and -82 < miny and maxy < 82, g.GetEnvelope()
            assert f.GetField("area_m2") > 0
            chips += f.GetField("chips")
        assert chips == total - bad, (chips, total, bad)
        print("%d of %d chips off the globe left out; %d features, %d chips written; %s"
              % (bad, total, len(feats), chips, warn[0]))


ct.main(test)
