"""canopy classify in geographic (EPSG:4326) and Web Mercator (EPSG:3857)
scenes with a model trained at 3 m: chips read at the model's GSD with
GDAL's bilinear resampling (degrees and scaled Mercator metres converted to
ground metres at the scene centre), the grid's geotransform against an
independent ellipsoid computation, probabilities against PyTorch on chips
cut out and resized by GDAL (gdal_translate), markers in lon/lat inside
the grid's bounds, and --gsd native.
"""
import math
import os
import sys

import numpy as np
from osgeo import gdal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import canopytest as ct  # noqa: E402
import test_classify_lib as L  # noqa: E402

A, F = 6378137.0, 1 / 298.257223563
E2 = F * (2 - F)
CHIP, SIZE, GSD = 32, 32, 3.0


def radii(phi):
    s2 = math.sin(phi) ** 2
    return A / math.sqrt(1 - E2 * s2), A * (1 - E2) / (1 - E2 * s2) ** 1.5  # N, M


def ground_pixel(epsg, gt, W, H):
    """Ground size (m) of a pixel at the scene centre, from the ellipsoid."""
    xc, yc = gt[0] + gt[1] * W / 2, gt[3] + gt[5] * H / 2
    if epsg == 4326:
        N, M = radii(math.radians(yc))
        return (math.radians(abs(gt[1])) * N * math.cos(math.radians(yc)),
                math.radians(abs(gt[5])) * M)
    phi = math.pi / 2 - 2 * math.atan(math.exp(-yc / A))  # pseudo-Mercator inverse
    N, M = radii(phi)
    return abs(gt[1]) * N * math.cos(phi) / A, abs(gt[5]) * M * math.cos(phi) / A


def check_scene(d, tiny, epsg, gt, W, H, extra=(), native=False):
    name = "scene_%d_%g%s" % (epsg, gt[1], "_native" if native else "")
    arr = L.texture(epsg % 97 + (1 if native else 0), 3, H, W)
    scene = os.path.join(d, name + ".tif")
    L.make_scene(scene, arr, gt, epsg)
    out = os.path.join(d, "out")
    L.classify("-q", "-m", tiny.path, "-o", out, "--chip", CHIP, "--probs-type", "Float32",
               *extra, scene)
    o = L.outputs(out, name)
    probs, names, ds = L.read_probs(o["probs"])
    g = ds.GetGeoTransform()
    m = L.load_manifest(o["manifest"])

    if native:
        cw = ch = float(CHIP)
    else:
        px, py = ground_pixel(epsg, gt, W, H)
        cw, ch = CHIP * GSD / px, CHIP * GSD / py
    alg = "none" if native else "bilinear"
    assert m["grid"]["resampling"] == alg, (alg, m["grid"])
    rows, cols = math.ceil(H / ch - 1e-9), math.ceil(W / cw - 1e-9)
    assert (ds.RasterXSize, ds.RasterYSize) == (cols, rows), ((cols, rows), ds.RasterXSize)
    # Origin on the scene's, and the far grid edge within 1e-6 of a scene
    # pixel of where the ellipsoid puts it.
    assert abs(g[0] - gt[0]) <= 1e-6 * abs(gt[1]) and abs(g[3] - gt[3]) <= 1e-6 * abs(gt[5])
    assert abs(g[1] - cw * gt[1]) * cols <= 1e-6 * abs(gt[1]), (g[1], cw * gt[1])
    assert abs(g[5] - ch * gt[5]) * rows <= 1e-6 * abs(gt[5]), (g[5], ch * gt[5])
    assert g[2] == 0 and g[4] == 0

    # Whole chips: the chip as GDAL cuts and resizes it, through PyTorch.
    fscene = gdal.Translate("", scene, format="MEM", outputType=gdal.GDT_Float32)
    checked, worst = 0, 0.0
    for r in range(rows):
        for c in range(cols):
            x0, y0 = c * cw, r * ch
            if x0 + cw > W or y0 + ch > H:  # partial: padded with the mean
                continue
            # The chip's pixels cut out with gdal_translate, resized alone.
            raw = L.chip_as_image(fscene, x0, y0, cw, ch, SIZE)
            ref = tiny.probs(tiny.normalise(raw)[None])[0]
            err = np.abs(probs[r, c] - ref).max()
            assert err <= 1e-4, "%s chip (%d,%d): max |p - p_torch| = %g" % (name, r, c, err)
            worst = max(worst, err)
            checked += 1
    assert checked >= 4, (name, checked)

    # Markers in lon/lat, clipped to the scene (the partial chips of the
    # grid run past it by less than one cell).
    thr = tiny.meta["thresholds"]
    n = L.check_markers(o["markers"], probs, thr, tiny.labels, tiny.markers, g, ds.GetProjection(),
                        L.scene_lonlat_bounds(scene), L.scene_extent(scene))
    print("%s: grid %dx%d, chip %.3f x %.3f scene px, %d whole chips within %.1e of PyTorch, "
          "%d marker polygons" % (name, cols, rows, cw, ch, checked, worst, n))


def run():
    with ct.tmpdir() as d:
        tiny = L.Tiny(os.path.join(d, "tiny3m.onnx"), seed=5, input_size=SIZE, gsd_m=GSD)
        # Thresholds at 0.5 so that markers split the chips.
        thr = []
        for lab in tiny.labels:
            thr += ["--threshold", "%s=0.5" % lab]
        tiny.meta["thresholds"] = [0.5] * len(tiny.labels)
        # ~2.2 m pixels in degrees at 9 S, 60 W.
        check_scene(d, tiny, 4326, [-60.0, 2.0e-5, 0.0, -9.0, 0.0, -2.0e-5], 290, 230, thr)
        # Web Mercator "3 m" pixels at ~40 S: about 2.30 x 2.29 m on the ground
        # (chips shrink), and "4.5 m" ones, about 3.45 m (chips grow).
        check_scene(d, tiny, 3857, [-6679169.0, 3.0, 0.0, -4865942.0, 0.0, -3.0], 250, 200, thr)
        check_scene(d, tiny, 3857, [-6679169.0, 4.5, 0.0, -4865942.0, 0.0, -4.5], 200, 170, thr)
        # --gsd native: chips of 32 scene pixels, no resampling.
        check_scene(d, tiny, 4326, [-60.0, 2.0e-5, 0.0, -9.0, 0.0, -2.0e-5], 200, 150,
                    thr + ["--gsd", "native"], native=True)

        # More than 4x finer than the model: refused with both GSDs named.
        fine = os.path.join(d, "fine.tif")
        L.make_scene(fine, np.zeros((3, 64, 64), np.uint8), [500000.0, 0.5, 0, 8900000.0, 0, -0.5],
                     32720)
        p = L.classify("-m", tiny.path, "-o", os.path.join(d, "out"), fine, check=False)
        assert p.returncode == 1, (p.returncode, p.stderr)
        for w in ("fine.tif", "(0.5 m)", "(3 m)", "4x", "--gsd native"):
            assert w in p.stderr, (w, p.stderr)
        assert not [f for f in os.listdir(os.path.join(d, "out")) if f.startswith("fine")]
        print("refused:", p.stderr.strip())


ct.main(run)
