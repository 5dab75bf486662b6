"""The scene tiler alone (tests/scene/test_classify_tiler drives it, no model):
chip grid geometry, ground pixel sizes in projected and geographic CRSs,
chips against GDAL's own reads (gdal_translate cut-outs resized alone), validity (nodata, alpha, dataset mask,
scene edges), strip segmentation, and clear errors for scenes it refuses.
"""
import json
import math
import os

import sys

import numpy as np
from osgeo import gdal, osr

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import canopytest as ct
from test_classify_lib import chip_as_image, make_scene
from scenes import texture

gdal.UseExceptions()
DRIVER = os.path.join(ct.BUILDDIR, "tests", "scene", "test_classify_tiler")

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


def tile(scene, out, *opts, check=True):
    p = ct.run([DRIVER, scene, out] + [str(o) for o in opts], check=check)
    if not check:
        return p
    return json.loads(p.stdout)


def chips_of(info, out, C):
    S = info["input_size"]
    return np.fromfile(out, dtype=np.float32).reshape(-1, C, S, S)


def norm(raw, offset=0.0, scale=1 / 255.0):
    """raw (C, h, w) float -> normalised as the tiler does."""
    m = np.array(MEAN, dtype=np.float64)[:, None, None]
    s = np.array(STD, dtype=np.float64)[:, None, None]
    return ((raw.astype(np.float64) - offset) * scale - m) / s


def valid_fraction(ok, x0, y0, cw, ch):
    """Share of pixel centres under the window that are valid (ok is the
    scene's validity; outside the scene counts as invalid)."""
    H, W = ok.shape
    xs = [i for i in range(int(math.floor(x0)) - 1, int(math.ceil(x0 + cw)) + 1)
          if x0 <= i + 0.5 < x0 + cw]
    ys = [j for j in range(int(math.floor(y0)) - 1, int(math.ceil(y0 + ch)) + 1)
          if y0 <= j + 0.5 < y0 + ch]
    total = len(xs) * len(ys)
    xin = [i for i in xs if 0 <= i < W]
    yin = [j for j in ys if 0 <= j < H]
    count = int(ok[np.ix_(yin, xin)].sum()) if xin and yin else 0
    return count / total


def expected_padded(nraw, ok, x0, y0, S):
    """Native chip: normalised pixels, 0 where invalid or outside."""
    C, H, W = nraw.shape
    out = np.zeros((C, S, S))
    x1, y1 = min(x0 + S, W), min(y0 + S, H)
    blk = np.where(ok[None, y0:y1, x0:x1], nraw[:, y0:y1, x0:x1], 0.0)
    out[:, :y1 - y0, :x1 - x0] = blk
    return out


def std_opts():
    return ["--mean", ",".join(map(str, MEAN)), "--std", ",".join(map(str, STD))]


def test_native_utm(d):
    rng = np.random.default_rng(1)
    W, H = 720, 580
    arr = rng.integers(0, 256, (3, H, W), dtype=np.uint8)
    gt = [500000.0, 3.0, 0.0, 8900000.0, 0.0, -3.0]
    scene = os.path.join(d, "utm.tif")
    make_scene(scene, arr, gt, 32720)
    out = os.path.join(d, "utm.f32")
    info = tile(scene, out, "--chip", 128, "--size", 128, *std_opts())
    assert (info["rows"], info["cols"]) == (5, 6), info
    assert info["resampling"] == "none" and info["mask_kind"] == "none", info
    # Ground size of a UTM pixel at the central meridian: grid size / k0.
    for k in range(2):
        assert abs(info["pixel_m"][k] - 3.0 / 0.9996) < 2e-4, info["pixel_m"]
    g = info["grid_gt"]
    assert g == [gt[0], 3.0 * 128, 0.0, gt[3], 0.0, -3.0 * 128], g
    chips = chips_of(info, out, 3)
    nraw = norm(arr)
    ok = np.ones((H, W), bool)
    assert len(info["chips"]) == chips.shape[0]
    seen = set()
    for k, (r, c, partial) in enumerate(info["chips"]):
        x0, y0 = c * 128, r * 128
        f = valid_fraction(ok, x0, y0, 128, 128)
        assert abs(info["valid"][r * info["cols"] + c] - f) < 1e-6, (r, c, f)
        assert f >= 0.5 and partial == (f < 1), (r, c, f, partial)
        exp = expected_padded(nraw, ok, x0, y0, 128)
        err = np.abs(chips[k] - exp).max()
        assert err < 1e-5, "chip (%d,%d) differs from GDAL by %g" % (r, c, err)
        seen.add((r, c))
    # Every cell with at least half its pixels was classified, no other.
    for r in range(info["rows"]):
        for c in range(info["cols"]):
            f = valid_fraction(ok, c * 128, r * 128, 128, 128)
            assert ((r, c) in seen) == (f >= 0.5), (r, c, f)
    # Last column: 720 - 5*128 = 80 px wide -> 0.625, partial; last row
    # 580 - 4*128 = 68 px -> 0.53, partial; the corner 0.33 is skipped.
    partial = {(r, c) for r, c, p in info["chips"] if p}
    assert partial == {(r, 5) for r in range(4)} | {(4, c) for c in range(5)}, partial
    assert (4, 5) not in seen

    # Overlapping stride, segments of 2 chips, 1 or 3 reader threads: the
    # same chips in the same order as one reader over whole strips.
    out2 = os.path.join(d, "utm2.f32")
    a = tile(scene, out2, "--chip", 128, "--stride", 64, "--size", 128, "--strip-chips", 2,
             *std_opts())
    b = tile(scene, out2 + "b", "--chip", 128, "--stride", 64, "--size", 128, "--readers", 1,
             *std_opts())
    assert a["n_strips"] > b["n_strips"] and a["chips"] == b["chips"], (a["n_strips"], b["n_strips"])
    ca, cb = chips_of(a, out2, 3), chips_of(b, out2 + "b", 3)
    assert np.array_equal(ca, cb)
    for readers in (1, 3):
        c = tile(scene, out2 + "c", "--chip", 128, "--stride", 64, "--size", 128,
                 "--strip-chips", 3, "--readers", readers, *std_opts())
        assert c["chips"] == a["chips"] and c["valid"] == a["valid"], readers
        assert np.array_equal(chips_of(c, out2 + "c", 3), ca), readers
    assert a["grid_gt"][1] == 3.0 * 64 and (a["rows"], a["cols"]) == (10, 12), a
    for k, (r, c, partial) in enumerate(a["chips"]):
        exp = expected_padded(nraw, ok, c * 64, r * 64, 128)
        assert np.abs(ca[k] - exp).max() < 1e-5, (r, c)
    print("native UTM: %d chips, %d with overlap; edges %s" % (len(info["chips"]), len(a["chips"]),
          [c for c in info["chips"] if c[2]]))


def test_resampled(d):
    """Scene at 2 m, model at 3 m: chips of 64 model px = 96 scene px,
    shrunk to 32; and grown to 160 at 1.5 m GSD (GDAL's bilinear both)."""
    rng = np.random.default_rng(2)
    W, H = 400, 300
    arr = rng.integers(0, 256, (3, H, W), dtype=np.uint8)
    scene = os.path.join(d, "two_m.tif")
    gt = [300000.0, 2.0, 0.0, 9000000.0, 0.0, -2.0]
    make_scene(scene, arr, gt, 32721)
    fscene = gdal.Translate("", scene, format="MEM", outputType=gdal.GDT_Float32)
    for gsd, size, alg in (("3", 32, "bilinear"), ("1.5", 160, "bilinear")):
        out = os.path.join(d, "two_m_%s.f32" % gsd)
        info = tile(scene, out, "--chip", 64, "--size", size, "--gsd", gsd, *std_opts())
        assert info["resampling"] == alg, info
        pm = info["pixel_m"]
        for k in range(2):
            exp = 64 * float(gsd) / pm[k]
            assert abs(info["chip_px"][k] - exp) < 1e-9, (info["chip_px"], exp)
        # Grid pixel = stride in scene pixels x the scene's pixel size.
        assert abs(info["grid_gt"][1] - info["stride_px"][0] * 2.0) < 1e-9
        assert abs(info["grid_gt"][5] + info["stride_px"][1] * 2.0) < 1e-9
        chips = chips_of(info, out, 3)
        checked = 0
        for k, (r, c, partial) in enumerate(info["chips"]):
            x0, y0 = c * info["stride_px"][0], r * info["stride_px"][1]
            cw, ch = info["chip_px"]
            if partial:  # padded with the mean past the scene
                continue
            # The chip's pixels cut out with gdal_translate, resized alone.
            ref = chip_as_image(fscene, x0, y0, cw, ch, size)
            err = np.abs(chips[k] - norm(ref)).max()
            assert err < 1e-4, "gsd %s chip (%d,%d): %g" % (gsd, r, c, err)
            checked += 1
        assert checked >= 4, info["chips"]
        print("resampled at %s m to %d px (%s): %d chips checked against gdal_translate" % (
            gsd, size, alg, checked))


def gdal_chip_errors(info, chips, fscene, size, offset, scale):
    """Largest |tiler - GDAL| over the chips that lie inside the scene, each
    resized alone by GDAL (chip_as_image) and normalised; and their count."""
    worst, checked = 0.0, 0
    for k, (r, c, partial) in enumerate(info["chips"]):
        if partial:  # padded with the mean past the scene
            continue
        x0, y0 = c * info["stride_px"][0], r * info["stride_px"][1]
        ref = chip_as_image(fscene, x0, y0, info["chip_px"][0], info["chip_px"][1], size)
        worst = max(worst, float(np.abs(chips[k] - norm(ref, offset, scale)).max()))
        checked += 1
    return worst, checked


def test_resampled_like_gdal(d):
    """The tiler resamples chips itself (classifier/scene/resample.c), with
    GDAL's bilinear weights, each chip as an image of its own: against
    GDAL's resampling of the same chip (gdal_translate of the cut-out, an
    independent reference) within 5e-6 on normalised values (measured:
    about 1e-6; float sums against GDAL's double ones). Cases: the
    benchmark's geometry (256 px chips at the scene's GSD shrunk to 128,
    pixel-interleaved DEFLATE, overlapping stride) and a UInt16 scene with an
    offset and scale read at a GSD that puts chips on fractional pixels."""
    rng = np.random.default_rng(11)
    W, H = 700, 600
    yy, xx = np.mgrid[0:H, 0:W]
    smooth = (120 + 100 * np.sin(xx / 17.0) * np.cos(yy / 23.0)).astype(np.int64)
    arr = np.clip(smooth[None] + rng.integers(-20, 21, (3, H, W)), 0, 255).astype(np.uint8)
    scene = os.path.join(d, "shrink.tif")
    make_scene(scene, arr, [500000.0, 3.0, 0.0, 9000000.0, 0.0, -3.0], 32721,
               options=["TILED=YES", "COMPRESS=DEFLATE", "PREDICTOR=2", "INTERLEAVE=PIXEL"])
    fscene = gdal.Translate("", scene, format="MEM", outputType=gdal.GDT_Float32)
    out = os.path.join(d, "shrink.f32")
    info = tile(scene, out, "--chip", 256, "--stride", 192, "--size", 128, "--gsd", "native",
                *std_opts())
    assert info["resampling"] == "bilinear", info
    err, n = gdal_chip_errors(info, chips_of(info, out, 3), fscene, 128, 0.0, 1 / 255.0)
    assert n >= 4 and err < 5e-6, (n, err)
    print("256 px chips shrunk to 128: %d chips within %.2g of GDAL's resampling" % (n, err))

    arr16 = (arr.astype(np.uint16) * 37 + 1000).astype(np.uint16)
    scene16 = os.path.join(d, "u16.tif")
    make_scene(scene16, arr16, [500000.0, 2.0, 0.0, 9000000.0, 0.0, -2.0], 32721,
               dtype=gdal.GDT_UInt16)
    fscene16 = gdal.Translate("", scene16, format="MEM", outputType=gdal.GDT_Float32)
    out16 = os.path.join(d, "u16.f32")
    info = tile(scene16, out16, "--chip", 64, "--size", 48, "--gsd", "2.7", "--offset", 1000,
                "--scale", 1 / 9435.0, *std_opts())
    assert info["chip_px"][0] != int(info["chip_px"][0]), info["chip_px"]
    err, n = gdal_chip_errors(info, chips_of(info, out16, 3), fscene16, 48, 1000.0, 1 / 9435.0)
    assert n >= 4 and err < 5e-6, (n, err)
    print("UInt16 at 2.7 m (chips of %.4g px) to 48: %d chips within %.2g of GDAL's" % (
        info["chip_px"][0], n, err))

    # Shrunk 40 times: GDAL widens its kernel to 80 source pixels, and so
    # must the tiler (any ratio GDAL takes).
    out40 = os.path.join(d, "shrink40.f32")
    info = tile(scene, out40, "--chip", 320, "--size", 8, "--gsd", "native", *std_opts())
    err, n = gdal_chip_errors(info, chips_of(info, out40, 3), fscene, 8, 0.0, 1 / 255.0)
    assert n >= 2 and err < 5e-6, (n, err)
    print("320 px chips shrunk to 8: %d chips within %.2g of GDAL's resampling" % (n, err))


def test_masks(d):
    """nodata, alpha, dataset mask and UInt16 with an offset/scale."""
    rng = np.random.default_rng(3)
    W, H = 300, 200
    gt = [600000.0, 10.0, 0.0, 8800000.0, 0.0, -10.0]
    arr = rng.integers(1, 3000, (3, H, W)).astype(np.uint16)
    ok = np.ones((H, W), bool)
    ok[:, :70] = False                 # a nodata band on the left
    ok[150:, 200:] = False             # and a block at the bottom right
    cases = []
    a1 = arr.copy()
    a1[:, ~ok] = 0
    cases.append(("nodata", dict(nodata=0), a1, gdal.GDT_UInt16))
    a2 = np.concatenate([arr, np.where(ok, 65535, 0)[None].astype(np.uint16)])
    cases.append(("alpha", dict(alpha=True), a2, gdal.GDT_UInt16))
    cases.append(("mask", dict(mask=np.where(ok, 255, 0).astype(np.uint8)), arr, gdal.GDT_UInt16))
    for kind, kw, data, dtype in cases:
        scene = os.path.join(d, "mask_%s.tif" % kind)
        make_scene(scene, data, gt, 32720, dtype=dtype, **kw)
        out = os.path.join(d, "mask_%s.f32" % kind)
        info = tile(scene, out, "--chip", 64, "--size", 64, "--offset", 100, "--scale",
                    1 / 2900.0, "--min-valid", 0.6, *std_opts())
        assert info["mask_kind"] == kind, (kind, info["mask_kind"])
        chips = chips_of(info, out, 3)
        nraw = norm(arr[:3].astype(np.float64), offset=100, scale=1 / 2900.0)
        got = {(r, c): k for k, (r, c, p) in enumerate(info["chips"])}
        for r in range(info["rows"]):
            for c in range(info["cols"]):
                f = valid_fraction(ok, c * 64, r * 64, 64, 64)
                assert abs(info["valid"][r * info["cols"] + c] - f) < 1e-6, (kind, r, c, f)
                assert ((r, c) in got) == (f >= 0.6 and f > 0), (kind, r, c, f)
                if (r, c) in got:
                    exp = expected_padded(nraw, ok, c * 64, r * 64, 64)
                    err = np.abs(chips[got[(r, c)]] - exp).max()
                    assert err < 1e-5, (kind, r, c, err)
        assert any(p for _, _, p in info["chips"]), "no partial chip in %s" % kind
        print("%s: %d of %d cells classified" % (kind, len(got), info["rows"] * info["cols"]))


def preview_ref(vals, ok, size):
    """The preview by its definition: canvas pixel = mean of the valid scene
    pixels whose centres fall in its footprint; vals (P, H, W) as stored."""
    P, H, W = vals.shape
    if W >= H:
        cw, ch = size, max(1, int(math.floor(size * H / W + 0.5)))
    else:
        ch, cw = size, max(1, int(math.floor(size * W / H + 0.5)))
    xb = np.minimum(np.floor((np.arange(W) + 0.5) * cw / W).astype(int), cw - 1)
    yb = np.minimum(np.floor((np.arange(H) + 0.5) * ch / H).astype(int), ch - 1)
    idx = (yb[:, None] * cw + xb[None, :]).ravel()
    cnt = np.bincount(idx, weights=ok.ravel().astype(np.float64), minlength=cw * ch)
    mean = np.stack([np.bincount(idx, weights=np.where(ok, v, 0.0).ravel(), minlength=cw * ch)
                     for v in vals.astype(np.float64)]) / np.maximum(cnt, 1)
    return mean.reshape(P, ch, cw), (cnt > 0).reshape(ch, cw)


def check_preview(info, out, vals, ok, size, what):
    exp, exp_ok = preview_ref(vals, ok, size)
    P, ch, cw = exp.shape
    assert info["preview"] == [cw, ch, P], (what, info["preview"], (cw, ch, P))
    got = np.fromfile(out + ".preview", dtype=np.float32)
    assert got.size == (P + 1) * cw * ch, (what, got.size)
    planes, valid = got[:P * cw * ch].reshape(P, ch, cw), got[P * cw * ch:].reshape(ch, cw)
    assert np.array_equal(valid > 0, exp_ok), (what, int((valid > 0).sum()), int(exp_ok.sum()))
    err = np.abs(planes - exp)[:, exp_ok].max()
    scale = np.abs(exp[:, exp_ok]).max()
    assert err <= 1e-6 * scale, (what, err, scale)
    assert (planes[:, ~exp_ok] == 0).all(), what
    print("preview %s: %d x %d x %d, %d invalid, worst error %.2g of %.3g"
          % (what, cw, ch, P, int((~exp_ok).sum()), err, scale))
    return planes


def test_preview(d):
    """The tiler's preview (what the quick-look draws) against its definition
    computed from GDAL's read of the whole scene: overlapping strips, several
    readers, segments, nodata, a mask band, a resampled grid, floats with
    NaN, portrait scenes; declined when an overview can be read instead."""
    gt = [600000.0, 10.0, 0.0, 8800000.0, 0.0, -10.0]
    # Byte, nodata: overlapping chips (stride < chip), 3-chip segments.
    W, H = 1500, 1000
    arr = texture(5, 3, H, W, lo=1)
    ok = np.ones((H, W), bool)
    ok[300:520, 410:730] = False
    ok[:, 1460:] = False
    arr[:, ~ok] = 0
    scene = os.path.join(d, "pv_byte.tif")
    make_scene(scene, arr, gt, 32720, nodata=0, options=["TILED=YES", "COMPRESS=DEFLATE"])
    out = os.path.join(d, "pv_byte.f32")
    first = None
    for readers in (1, 2, 3):
        info = tile(scene, out, "--chip", 128, "--stride", 96, "--size", 128, "--strip-chips", 3,
                    "--readers", readers, "--preview", 256, *std_opts())
        planes = check_preview(info, out, arr, ok, 256, "byte, %d readers" % readers)
        if first is None:
            first = planes
        assert np.abs(planes - first).max() <= 1e-3, "readers change the preview"
    # A canvas larger than the scene along a side: declined (a box filter
    # cannot enlarge; the quick-look then reads the scene itself).
    for size in (1501, 3000):
        info = tile(scene, out, "--chip", 128, "--size", 128, "--preview", size, *std_opts())
        assert info["preview"] is None, (size, info["preview"])
    info = tile(scene, out, "--chip", 128, "--size", 128, "--preview", 1500, *std_opts())
    assert info["preview"] == [1500, 1000, 3], info["preview"]
    # UInt16 through a mask band, bands reordered (4 read: the first three
    # make the picture), on a grid resampled to 13 m (fractional windows).
    arr = texture(6, 4, 640, 900, lo=1, hi=12000, dtype=np.uint16)
    mask = np.full((640, 900), 255, np.uint8)
    mask[500:, :200] = 0
    scene = os.path.join(d, "pv_u16.tif")
    make_scene(scene, arr, gt, 32720, dtype=gdal.GDT_UInt16, mask=mask)
    info = tile(scene, out, "--chip", 64, "--stride", 50, "--size", 64, "--gsd", 13,
                "--bands", "3,2,1,4", "--mean", "0,0,0,0", "--std", "1,1,1,1",
                "--preview", 300)
    assert info["resampling"] == "bilinear", info["resampling"]
    check_preview(info, out, arr[[2, 1, 0]], mask > 0, 300, "uint16, mask, 13 m grid")
    # Float32 with NaN, one band, portrait.
    arr = texture(7, 1, 1100, 700, lo=0, hi=1, dtype=np.float64).astype(np.float32)
    arr[0, 100:180, 50:400] = np.nan
    scene = os.path.join(d, "pv_f32.tif")
    make_scene(scene, arr, gt, 32720, dtype=gdal.GDT_Float32)
    info = tile(scene, out, "--chip", 100, "--size", 100, "--bands", "1", "--mean", "0",
                "--std", "1", "--preview", 128)
    check_preview(info, out, np.nan_to_num(arr), np.isfinite(arr[0]), 128, "float32, NaN")
    # An overview as large as the canvas: the tiler leaves the preview to it.
    ds = gdal.Open(scene, gdal.GA_Update)
    ds.BuildOverviews("AVERAGE", [4])
    ds = None
    info = tile(scene, out, "--chip", 100, "--size", 100, "--bands", "1", "--mean", "0",
                "--std", "1", "--preview", 128)
    assert info["preview"] is None, info["preview"]
    info = tile(scene, out, "--chip", 100, "--size", 100, "--bands", "1", "--mean", "0",
                "--std", "1", "--preview", 300)
    assert info["preview"] == [191, 300, 1], info["preview"]


def test_geographic(d):
    """EPSG:4326 (degrees) and EPSG:3857 (scaled metres): ground pixel sizes
    from the ellipsoid at the scene centre."""
    a, f = 6378137.0, 1 / 298.257223563
    e2 = f * (2 - f)
    arr = np.full((3, 300, 400), 100, np.uint8)
    lat0 = -9.0
    deg = 3.0e-5
    scene = os.path.join(d, "geo.tif")
    make_scene(scene, arr, [-60.0, deg, 0.0, lat0, 0.0, -deg], 4326)
    info = tile(scene, os.path.join(d, "geo.f32"), "--chip", 64, "--size", 64, "--gsd", 3.0,
                *std_opts())
    phi = math.radians(lat0 - deg * 150)
    N = a / math.sqrt(1 - e2 * math.sin(phi) ** 2)
    M = a * (1 - e2) / (1 - e2 * math.sin(phi) ** 2) ** 1.5
    ex, ey = math.radians(deg) * N * math.cos(phi), math.radians(deg) * M
    assert abs(info["pixel_m"][0] / ex - 1) < 1e-6 and abs(info["pixel_m"][1] / ey - 1) < 1e-6, \
        (info["pixel_m"], ex, ey)
    assert abs(info["chip_px"][0] - 64 * 3.0 / ex) < 1e-4 and abs(info["chip_px"][1] - 64 * 3.0 / ey) < 1e-4
    assert abs(info["grid_gt"][1] - deg * info["stride_px"][0]) < 1e-15
    geo_m = info["pixel_m"]

    # Web Mercator at about 40 degrees south: 4 "metres" are ~3 m on the ground.
    y0 = -4865942.28  # ~ -40 deg
    scene = os.path.join(d, "merc.tif")
    make_scene(scene, arr, [-6679169.45, 4.0, 0.0, y0, 0.0, -4.0], 3857)
    info = tile(scene, os.path.join(d, "merc.f32"), "--chip", 64, "--size", 64, "--gsd", 3.0,
                *std_opts())
    yc = y0 - 4.0 * 150
    phi = math.pi / 2 - 2 * math.atan(math.exp(-yc / a))  # spherical inverse
    N = a / math.sqrt(1 - e2 * math.sin(phi) ** 2)
    M = a * (1 - e2) / (1 - e2 * math.sin(phi) ** 2) ** 1.5
    ex = 4.0 * N * math.cos(phi) / a
    ey = 4.0 * M * math.cos(phi) / a
    assert abs(info["pixel_m"][0] / ex - 1) < 1e-5 and abs(info["pixel_m"][1] / ey - 1) < 1e-5, \
        (info["pixel_m"], ex, ey)
    print("geographic pixel %.4f x %.4f m, Web Mercator %.4f x %.4f m" % (
        geo_m[0], geo_m[1], info["pixel_m"][0], info["pixel_m"][1]))


def test_refusals(d):
    arr = np.zeros((3, 64, 64), np.uint8)
    cases = []
    p = os.path.join(d, "rotated.tif")
    make_scene(p, arr, [500000.0, 3.0, 0.5, 8900000.0, 0.5, -3.0], 32720)
    cases.append((p, [], ["rotated", "gdalwarp"]))
    p = os.path.join(d, "nogeo.tif")
    gdal.GetDriverByName("GTiff").Create(p, 64, 64, 3, gdal.GDT_Byte)
    cases.append((p, [], ["no georeferencing"]))
    p = os.path.join(d, "nocrs.tif")
    make_scene(p, arr, [500000.0, 3.0, 0.0, 8900000.0, 0.0, -3.0], None)
    cases.append((p, [], ["coordinate reference system"]))
    p = os.path.join(d, "fine.tif")
    make_scene(p, arr, [500000.0, 0.5, 0.0, 8900000.0, 0.0, -0.5], 32720)
    cases.append((p, ["--gsd", "3"], ["more than 4x", "--gsd native", "(3 m)", "(0.5 m)"]))
    p = os.path.join(d, "oneband.tif")
    make_scene(p, arr[:1], [500000.0, 3.0, 0.0, 8900000.0, 0.0, -3.0], 32720)
    cases.append((p, [], ["band 2", "--bands"]))
    # A truncated TIFF: the header opens, the pixels are gone.
    big = np.random.default_rng(5).integers(0, 256, (3, 512, 512), dtype=np.uint8)
    p = os.path.join(d, "truncated.tif")
    make_scene(p, big, [500000.0, 3.0, 0.0, 8900000.0, 0.0, -3.0], 32720)
    with open(p, "r+b") as fh:
        fh.truncate(os.path.getsize(p) // 3)
    cases.append((p, [], ["truncated.tif"]))
    p = os.path.join(d, "missing.tif")
    cases.append((p, [], ["cannot open", "missing.tif", "exist"]))
    for scene, opts, words in cases:
        r = tile(scene, os.path.join(d, "x.f32"), "--chip", 64, "--size", 64, *opts, check=False)
        assert r.returncode == 1, (scene, r.returncode, r.stderr)
        for w in words + [os.path.basename(scene)]:
            assert w in r.stderr, "%s: %r not in %r" % (scene, w, r.stderr)
        print("refused %s: %s" % (os.path.basename(scene), r.stderr.strip()))


def main():
    with ct.tmpdir() as d:
        test_native_utm(d)
        test_resampled(d)
        test_resampled_like_gdal(d)
        test_masks(d)
        test_preview(d)
        test_geographic(d)
        test_refusals(d)


ct.main(main)
