"""canopy alerts: scenes on other grids are mapped onto the state's grid as
gdalwarp maps them (run here independently: nearest neighbour, exact
transformation): a scene in the next UTM zone (EPSG:32722) with its own chip
grid, and a state on a reference grid (--alerts-grid REF.tif) of other cells.
Clear/obscured/unclassified status follows the warped labels."""
import glob
import json
import os

import numpy as np
from osgeo import gdal, osr

import alertslib as al
from canopytest import canopy, main, tmpdir

gdal.UseExceptions()


def zone22_probs(path, rng):
    """Probabilities on a 768 m grid of UTM 22S over (and around) the state's
    area, random values, some cells cloudy, a few not classified."""
    src = osr.SpatialReference()
    src.ImportFromEPSG(al.EPSG)
    dst = osr.SpatialReference()
    dst.ImportFromEPSG(32722)
    src.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    dst.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    ct = osr.CoordinateTransformation(src, dst)
    x0, dx, _, y0, _, dy = al.GT
    xs, ys = [], []
    for c in (0, al.COLS):
        for r in (0, al.ROWS):
            x, y, _ = ct.TransformPoint(x0 + c * dx, y0 + r * dy)
            xs.append(x)
            ys.append(y)
    gx0, gy0 = np.floor(min(xs) / 768.0) * 768.0 - 300.0, np.ceil(max(ys) / 768.0) * 768.0 + 100.0
    cols = int(np.ceil((max(xs) - gx0) / 768.0)) + 1
    rows = int(np.ceil((gy0 - min(ys)) / 768.0)) + 1
    p = {lab: rng.uniform(0, 1, (rows, cols)) for lab in al.LABELS}
    p["cloudy"] = np.where(rng.uniform(0, 1, (rows, cols)) < 0.2, 0.9, 0.05)
    p["haze"][:] = p["partly_cloudy"][:] = 0.05
    p["road"][rows // 2, :] = np.nan
    al.write_probs(path, p, gt=(gx0, 768.0, 0.0, gy0, 0.0, -768.0), epsg=32722)


def gdalwarp_bands(probs, gt, cols, rows, epsg):
    """The probabilities warped by gdalwarp itself onto a grid."""
    out = gdal.Warp("", probs, format="MEM", dstSRS="EPSG:%d" % epsg, resampleAlg="near",
                    errorThreshold=0, outputBounds=(gt[0], gt[3] + rows * gt[5], gt[0] + cols * gt[1], gt[3]),
                    width=cols, height=rows, dstNodata=255)
    return {out.GetRasterBand(b + 1).GetDescription(): out.GetRasterBand(b + 1).ReadAsArray()
            for b in range(out.RasterCount)}


def check_obs(state, scene, ref):
    obs = [p for p in glob.glob(os.path.join(state, "obs", "*.tif"))
           if os.path.basename(p).startswith(scene)]
    assert len(obs) == 1, obs
    d = gdal.Open(obs[0])
    bands = {d.GetRasterBand(b + 1).GetDescription(): d.GetRasterBand(b + 1).ReadAsArray()
             for b in range(d.RasterCount)}
    status = bands["status"]
    seen = ref["road"] != 255
    for lab in al.MARKERS:
        seen &= ref[lab] != 255
    cloudy = seen & (ref["cloudy"] != 255) & (ref["cloudy"] / 255.0 >= 0.5)
    want = np.where(~seen, 0, np.where(cloudy, 2, 1))
    assert np.array_equal(status, want), "status:\n%s\nexpected (from gdalwarp):\n%s" % (status, want)
    assert (status == 1).sum() > 3 and (status == 2).sum() > 0 and (status == 0).sum() > 0, status
    for lab in al.MARKERS:
        got = bands[lab]
        exp = np.where(status == 1, ref[lab], 255)
        assert np.array_equal(got, exp), "%s:\n%s\nexpected (from gdalwarp):\n%s" % (lab, got, exp)


def test():
    rng = np.random.default_rng(5)
    with tmpdir() as t:
        first = os.path.join(t, "first_20260105.probs.tif")
        al.write_probs(first, {lab: np.full((al.ROWS, al.COLS), 0.1) for lab in al.LABELS})
        other = os.path.join(t, "other_20260119.probs.tif")
        zone22_probs(other, rng)
        state = os.path.join(t, "state")
        canopy("alerts", "add", state, first, other)
        s = json.load(open(os.path.join(state, "state.json")))
        assert s["grid"]["cols"] == al.COLS and s["grid"]["rows"] == al.ROWS and \
            s["grid"]["geotransform"] == list(al.GT), s["grid"]
        check_obs(state, "other_", gdalwarp_bands(other, al.GT, al.COLS, al.ROWS, al.EPSG))

        # A reference grid: 1 km cells in UTM 21S over a larger area.
        ref = os.path.join(t, "ref.tif")
        rgt = (600000.0, 1000.0, 0.0, 8956000.0, 0.0, -1000.0)
        d = gdal.GetDriverByName("GTiff").Create(ref, 12, 10, 1, gdal.GDT_Byte)
        d.SetGeoTransform(rgt)
        d.SetProjection(al.wkt(al.EPSG))
        d = None
        state2 = os.path.join(t, "state2")
        canopy("alerts", "add", "--alerts-grid", ref, state2, other)
        s = json.load(open(os.path.join(state2, "state.json")))
        assert (s["grid"]["cols"], s["grid"]["rows"]) == (12, 10) and \
            s["grid"]["geotransform"] == list(rgt), s["grid"]
        check_obs(state2, "other_", gdalwarp_bands(other, rgt, 12, 10, al.EPSG))
        a = gdal.Open(os.path.join(state2, "alerts.tif"))
        assert a.GetGeoTransform() == rgt and (a.RasterXSize, a.RasterYSize) == (12, 10)

        # A scene of another area: a clear message, the state unchanged.
        far = os.path.join(t, "far_20260202.probs.tif")
        al.write_probs(far, {lab: np.full((3, 3), 0.5) for lab in al.LABELS},
                       gt=(100000.0, 768.0, 0.0, 7000000.0, 0.0, -768.0))
        before = open(os.path.join(state, "state.json"), "rb").read()
        p = canopy("alerts", "add", state, far, check=False)
        assert p.returncode == 1 and "no classified chip of this scene falls on the alert grid" \
            in p.stderr, p.stderr
        assert open(os.path.join(state, "state.json"), "rb").read() == before


main(test)
