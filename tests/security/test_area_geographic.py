"""area_m2 in a geographic CRS (issue 13, item 9): a region of a whole-world
EPSG:4326 scene came out 34x too small and a region covering the whole
world as 0 (its edges, parallels, were measured as geodesics). Every chip is
made a marker (--threshold agriculture=0), so the regions are known
exactly: the whole world, and a band 0..60 N around the globe (nodata
elsewhere). Their area_m2, read with OGR, is checked against a numerical
integral of the WGS 84 area element (numpy), and a 10x10 degree block against
the same; each within 1e-6 relative.
"""
import json
import os

import numpy as np
from osgeo import gdal, ogr, osr

import canopytest as ct

gdal.UseExceptions()
A, F = 6378137.0, 1 / 298.257223563
E2 = F * (2 - F)


def area_between(lat0, lat1, dlon_deg):
    """Area of the lat/lon box by the trapezoid rule on 200001 latitudes."""
    phi = np.linspace(np.radians(lat0), np.radians(lat1), 200001)
    f = A * A * (1 - E2) * np.cos(phi) / (1 - E2 * np.sin(phi) ** 2) ** 2
    return float(np.trapz(f, phi)) * np.radians(dlon_deg)


def world(path, valid=None):
    """360 x 180 at 1 degree; valid(lat_top_row) -> bool per row, else nodata 0."""
    ds = gdal.GetDriverByName("GTiff").Create(path, 360, 180, 3, gdal.GDT_Byte)
    ds.SetGeoTransform([-180.0, 1.0, 0.0, 90.0, 0.0, -1.0])
    s = osr.SpatialReference()
    s.ImportFromEPSG(4326)
    ds.SetProjection(s.ExportToWkt())
    rng = np.random.default_rng(11)
    arr = rng.integers(1, 256, (3, 180, 360), dtype=np.uint8)
    if valid is not None:
        for r in range(180):
            if not valid(90 - r):
                arr[:, r, :] = 0
    for b in range(3):
        band = ds.GetRasterBand(b + 1)
        band.WriteArray(arr[b])
        if valid is not None:
            band.SetNoDataValue(0)
    ds = None


def areas(out, name):
    ds = ogr.Open(os.path.join(out, name + ".markers.geojson"))
    lyr = ds.GetLayer(0)
    return [f.GetField("area_m2") for f in lyr]


def test():
    with ct.tmpdir() as d:
        opts = ["classify", "-q", "--gsd", "native", "--chip", 10, "--threshold",
                "agriculture=0", "--markers", "agriculture"]
        cases = [("whole", None, area_between(-90, 90, 360)),
                 ("band", lambda lat: 0 < lat <= 60, area_between(0, 60, 360))]
        for name, valid, want in cases:
            sc = os.path.join(d, name + ".tif")
            world(sc, valid)
            out = os.path.join(d, "out")
            ct.canopy(*opts, "-o", out, sc)
            got = areas(out, name)
            assert len(got) == 1, got
            rel = abs(got[0] - want) / want
            print("%s: area_m2 %.6e, integral %.6e, relative error %.2e" % (name, got[0], want, rel))
            assert rel < 1e-6, (name, got[0], want)
        # A block: one valid chip at 30..40 S, 10..20 E.
        sc = os.path.join(d, "block.tif")
        world(sc, lambda lat: -40 < lat <= -30)
        ds = gdal.Open(sc, gdal.GA_Update)
        for b in range(3):
            arr = ds.GetRasterBand(b + 1).ReadAsArray()
            arr[:, :190] = 0
            arr[:, 200:] = 0
            ds.GetRasterBand(b + 1).WriteArray(arr)
        ds = None
        out = os.path.join(d, "out-block")
        ct.canopy("classify", "-q", "--gsd", "native", "--chip", 10, "--threshold",
                  "agriculture=0", "--markers", "agriculture", "-o", out, sc)
        got = areas(out, "block")
        want = area_between(-40, -30, 10)
        assert len(got) == 1 and abs(got[0] - want) / want < 1e-6, (got, want)
        print("block: area_m2 %.6e, integral %.6e" % (got[0], want))


ct.main(test)
