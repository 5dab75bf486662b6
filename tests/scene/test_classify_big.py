"""canopy classify on a 40000 x 40000 scene in bounded memory.

The scene is a sparse tiled GeoTIFF (cheap to make: unwritten tiles are
nodata, and canopy does not read what GDAL reports as empty) with two
full-width bands of imagery and a few scattered tiles. The run must
classify exactly the chips over imagery, and its peak RSS must not grow
with the scene: it is compared with the same imagery in a scene 10x shorter
(40000 x 4096), with GDAL's block cache held to 32 MB so that the imagery
(61 MB decompressed) cycles through it.
"""
import os
import signal
import subprocess
import sys
import time

import numpy as np
from osgeo import gdal, osr

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import canopytest as ct  # noqa: E402
import test_classify_lib as L  # noqa: E402

SIDE = 40000
CHIP = 256


def make_sparse(path, height, bands_at, tiles):
    ds = gdal.GetDriverByName("GTiff").Create(
        path, SIDE, height, 3, gdal.GDT_Byte,
        ["TILED=YES", "BLOCKXSIZE=512", "BLOCKYSIZE=512", "SPARSE_OK=TRUE", "COMPRESS=DEFLATE"])
    ds.SetGeoTransform([300000.0, 3.0, 0.0, 9000000.0, 0.0, -3.0])
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32721)
    ds.SetProjection(srs.ExportToWkt())
    for b in range(3):
        ds.GetRasterBand(b + 1).SetNoDataValue(0)
    row = np.full((3, 512, SIDE), 0, np.uint8)
    for b in range(3):
        row[b] = 90 + 30 * b + (np.arange(SIDE) // 1000 % 7).astype(np.uint8) * 5
    for y in bands_at:
        ds.WriteRaster(0, y, SIDE, 512, row.tobytes())
    rng = np.random.default_rng(4)
    for x, y in tiles:
        ds.WriteRaster(x, y, 512, 512, rng.integers(1, 255, (3, 512, 512), dtype=np.uint8).tobytes())
    ds = None


def run():
    with ct.tmpdir() as d:
        tiny = L.Tiny(os.path.join(d, "tiny.onnx"), seed=9, input_size=32)
        big = os.path.join(d, "big.tif")
        small = os.path.join(d, "short.tif")
        tiles = [(512 * 11, 512 * 40), (512 * 70, 512 * 20)]
        make_sparse(big, SIDE, [1024, 30720], tiles)
        make_sparse(small, 4096, [1024, 2048], [(512 * 11, 512 * 6), (512 * 70, 0)])
        assert os.path.getsize(big) < 50 << 20, os.path.getsize(big)

        res = {}
        for name, scene in (("short", small), ("big", big)):
            out = os.path.join(d, "out_" + name)
            cmd = [ct.CANOPY, "classify", "-m", tiny.path, "-o", out, "--chip", str(CHIP),
                   "--threads", "2", "--config", "GDAL_CACHEMAX", "32", scene]
            rc, so, se, rss, wall = L.run_measured(cmd)
            assert rc == 0, (rc, so, se)
            base = os.path.splitext(os.path.basename(scene))[0]
            m = L.load_manifest(os.path.join(out, base + ".manifest.json"))
            res[name] = (rss, wall, m)
            print("%s (%dx%d): peak RSS %.0f MB, %.1f s, %d chips classified, read %.1f s, "
                  "inference %.1f s" % (name, SIDE, gdal.Open(scene).RasterYSize, rss / 1024.0,
                                        wall, m["chips"]["classified"], m["timings_s"]["read"],
                                        m["timings_s"]["inference"]))

        rss_big, _, m = res["big"]
        rss_small = res["short"][0]
        # The readers' CPU time: spent, and no more than their busy wall time
        # (both summed over the reader threads; 10 ms for clock granularity).
        tm = m["timings_s"]
        assert 0 < tm["read_cpu"] <= tm["read"] + 0.01, tm
        n = -(-SIDE // CHIP)
        assert (m["grid"]["rows"], m["grid"]["cols"]) == (n, n), m["grid"]
        # Imagery: two 512-row bands = 2 x 2 chip rows of 156 full chips
        # (the last column, 64 px wide, is under --min-valid), plus the 2 x 2
        # chips under each scattered 512 px tile.
        assert m["chips"]["classified"] == 4 * 156 + 8, m["chips"]
        probs, _, _ = L.read_probs(os.path.join(d, "out_big", "big.probs.tif"))
        cls = ~np.isnan(probs[..., 0])
        rows = sorted(set(np.nonzero(cls)[0].tolist()))
        assert rows == [4, 5, 40, 41, 80, 81, 120, 121], rows
        assert cls[80, 22] and cls[81, 23] and cls[40, 140] and not cls[40, 139]
        # Interrupted (SIGINT) in the middle of the big scene: the process
        # dies of the signal after removing what it had started; nothing
        # under a final name, no temporary left.
        out = os.path.join(d, "out_int")
        p = subprocess.Popen([ct.CANOPY, "classify", "-m", tiny.path, "-o", out, "--chip",
                              str(CHIP), big], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        t0 = time.monotonic()
        while not os.path.isdir(out) and time.monotonic() - t0 < 20:
            time.sleep(0.05)
        # Reading the imagery takes most of a second (the quick-look comes
        # from the same reads): 0.3 s in is in the middle of it.
        time.sleep(0.3)
        assert p.poll() is None, "the run ended before it could be interrupted"
        p.send_signal(signal.SIGINT)
        so, se = p.communicate(timeout=120)
        assert p.returncode == -signal.SIGINT, (p.returncode, so, se)
        assert "interrupted" in se, se
        assert os.listdir(out) == [], os.listdir(out)
        print("interrupted run:", se.strip().splitlines()[-1])

        # Memory does not grow with the scene: 10x the rows, same peak.
        assert rss_big < rss_small + (48 << 10), (rss_big, rss_small)
        # Under ./configure --enable-sanitizers, ASan's shadow memory and its
        # quarantine of freed blocks (256 MB) add to every process's peak:
        # only the growth check above is meaningful there.
        limit = (400 + (256 if os.environ.get("CANOPY_SANITIZED") else 0)) << 10
        assert rss_big < limit, "peak RSS %d KiB" % rss_big


ct.main(run)
