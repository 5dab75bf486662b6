"""Scenes georeferenced only by ground control points or RPCs (issue 13,
item 7): GDAL has no geotransform for them, and some drivers report its
default 0,1,0,0,0,1 as if it were one; canopy used to classify such a scene
at (0, 0) with 1 m pixels. Each is refused with exit 1, a message naming the
file and the gdalwarp command that fixes it, and nothing written to -o.
The fix the message gives (gdalwarp -tps) then classifies at the scene's
real place, checked against the warped file's geotransform read by GDAL.
"""
import os
import subprocess

import numpy as np
from osgeo import gdal, osr

import canopytest as ct

gdal.UseExceptions()
W = H = 200
X0, Y0, PX = 500000.0, 8900000.0, 3.0


def srs_wkt():
    s = osr.SpatialReference()
    s.ImportFromEPSG(32720)
    return s.ExportToWkt()


def gcp_tif(path):
    ds = gdal.GetDriverByName("GTiff").Create(path, W, H, 3, gdal.GDT_Byte)
    rng = np.random.default_rng(7)
    for b in range(3):
        ds.GetRasterBand(b + 1).WriteArray(rng.integers(0, 256, (H, W), dtype=np.uint8))
    gcps = [gdal.GCP(X0 + PX * c, Y0 - PX * r, 0, c, r)
            for c, r in ((0, 0), (W, 0), (0, H), (W, H), (W / 2, H / 3))]
    ds.SetGCPs(gcps, srs_wkt())
    ds = None


def rpc_tif(path):
    ds = gdal.GetDriverByName("GTiff").Create(path, W, H, 3, gdal.GDT_Byte)
    ds.GetRasterBand(1).Fill(90)
    one = " ".join(["0"] * 20)
    num = "0 1 " + " ".join(["0"] * 18)
    ds.SetMetadata({"LINE_OFF": "100", "SAMP_OFF": "100", "LAT_OFF": "-10", "LONG_OFF": "-60",
                    "HEIGHT_OFF": "0", "LINE_SCALE": "100", "SAMP_SCALE": "100",
                    "LAT_SCALE": "0.01", "LONG_SCALE": "0.01", "HEIGHT_SCALE": "100",
                    "LINE_NUM_COEFF": num, "LINE_DEN_COEFF": "1 " + one[2:],
                    "SAMP_NUM_COEFF": num, "SAMP_DEN_COEFF": "1 " + one[2:]}, "RPC")
    ds = None


def identity_vrt(path, src):
    """A VRT with GCPs and an explicit 0,1,0,0,0,1 geotransform: GDAL reports
    that geotransform as valid (the case canopy used to place at 0,0)."""
    gdal.Translate(path, src, format="VRT")
    with open(path) as f:
        xml = f.read()
    xml = xml.replace("<GCPList", "<GeoTransform>0, 1, 0, 0, 0, 1</GeoTransform>\n  <GCPList", 1)
    with open(path, "w") as f:
        f.write(xml)
    ds = gdal.Open(path)
    assert ds.GetGeoTransform(can_return_null=True) == (0, 1, 0, 0, 0, 1), "fixture"
    assert ds.GetGCPCount() == 5, "fixture"


def test():
    with ct.tmpdir() as d:
        gcp = os.path.join(d, "gcp.tif")
        gcp_tif(gcp)
        rpc = os.path.join(d, "rpc.tif")
        rpc_tif(rpc)
        assert gdal.Open(rpc).GetMetadata("RPC"), "fixture: RPCs not stored"
        vrt = os.path.join(d, "identity.vrt")
        identity_vrt(vrt, gcp)
        for scene, words in ((gcp, ["5 ground control points", "gdalwarp -tps " + gcp]),
                             (vrt, ["5 ground control points", "gdalwarp -tps " + vrt]),
                             (rpc, ["RPCs", "gdalwarp -rpc"])):
            out = os.path.join(d, "out-" + os.path.basename(scene))
            r = ct.canopy("classify", "-q", "--chip", 64, "-o", out, scene, check=False)
            assert r.returncode == 1, (scene, r.returncode, r.stderr)
            for w in words:
                assert w in r.stderr, "%r not in %r" % (w, r.stderr)
            left = os.listdir(out) if os.path.isdir(out) else []
            assert left == [], "outputs left for a refused scene: %r" % left
            print("refused %s: %s" % (os.path.basename(scene), r.stderr.strip()))

        # What the message says to do, then classify: the grid sits where
        # the GCPs put the scene, not at 0,0.
        warped = os.path.join(d, "warped.tif")
        subprocess.run(["gdalwarp", "-q", "-tps", gcp, warped], check=True)
        wgt = gdal.Open(warped).GetGeoTransform()
        out = os.path.join(d, "out-warped")
        ct.canopy("classify", "-q", "--chip", 64, "--gsd", "native", "-o", out, warped)
        g = gdal.Open(os.path.join(out, "warped.probs.tif")).GetGeoTransform()
        assert abs(g[0] - wgt[0]) < 1e-6 and abs(g[3] - wgt[3]) < 1e-6, (g, wgt)
        assert abs(g[0] - X0) < 2 * PX and abs(g[3] - Y0) < 2 * PX, (g, X0, Y0)


ct.main(test)
