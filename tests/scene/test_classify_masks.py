"""canopy classify with invalid pixels and other data types: a UInt16
4-band scene with a nodata value, read through --bands 3,2,1 and
--scale-range 0,3000; a Byte RGBA scene whose alpha band hides part of it;
an all-nodata scene (a clear failure, no outputs). Chips under --min-valid
are not classified (nodata in probs and masks); the others match PyTorch on
the valid pixels with the rest set to the channel mean.
"""
import os
import sys

import numpy as np
from osgeo import gdal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import canopytest as ct  # noqa: E402
import test_classify_lib as L  # noqa: E402

CHIP = SIZE = 32  # native chips: the reference is the pixels themselves
W, H = 300, 220
GT = [600000.0, 10.0, 0.0, 8800000.0, 0.0, -10.0]


def expected(tiny, raw, ok, min_valid, offset=0.0, scale=None):
    rows, cols = -(-H // CHIP), -(-W // CHIP)
    norm = tiny.normalise(raw, offset=offset, scale=scale)
    probs = np.full((rows, cols, len(tiny.labels)), np.nan)
    for r in range(rows):
        for c in range(cols):
            f = L.valid_fraction(ok, c * CHIP, r * CHIP, CHIP)
            if f == 0 or f < min_valid:
                continue
            x = L.padded_chip(norm, ok, c * CHIP, r * CHIP, CHIP)
            probs[r, c] = tiny.probs(x[None])[0]
    return probs


def compare(tiny, out, name, ref, what):
    o = L.outputs(out, name)
    probs, names, _ = L.read_probs(o["probs"])
    assert names == tiny.labels
    assert np.array_equal(np.isnan(probs), np.isnan(ref)), (
        "%s: classified cells differ:\n%s\n%s" % (what, (~np.isnan(probs[..., 0])).astype(int),
                                                  (~np.isnan(ref[..., 0])).astype(int)))
    err = np.nanmax(np.abs(probs - ref))
    assert err <= 1e-4, "%s: max |p - p_torch| = %g" % (what, err)
    masks, nds, _ = L.read_masks(o["masks"])
    nan = np.isnan(probs)
    assert (masks[nan] == 255).all() and ((masks[~nan] == 0) | (masks[~nan] == 1)).all()
    m = L.load_manifest(o["manifest"])
    n = int((~np.isnan(ref[..., 0])).sum())
    assert m["chips"]["classified"] == n and m["chips"]["skipped"] == ref.shape[0] * ref.shape[1] - n
    print("%s: %d of %d chips classified (mask %s), max |p - p_torch| = %.1e" % (
        what, n, ref.shape[0] * ref.shape[1], m["grid"]["validity_mask"], err))
    return m


def run():
    with ct.tmpdir() as d:
        tiny = L.Tiny(os.path.join(d, "tiny.onnx"), seed=11, input_size=SIZE)
        out = os.path.join(d, "out")
        ok = np.ones((H, W), bool)
        ok[:, :90] = False          # a strip of nodata on the west
        ok[150:, 180:] = False      # and a block in the south-east

        # UInt16, 4 bands (blue, green, red, NIR), nodata 0, reflectance 0..3000.
        refl = L.texture(21, 4, H, W, lo=50, hi=3000, dtype=np.uint16)
        refl[:, ~ok] = 0
        scene = os.path.join(d, "s2_l2a.tif")
        L.make_scene(scene, refl, GT, 32721, dtype=gdal.GDT_UInt16, nodata=0)
        L.classify("-q", "-m", tiny.path, "-o", out, "--chip", CHIP, "--bands", "3,2,1",
                   "--scale-range", "0,3000", "--probs-type", "Float32", scene)
        ref = expected(tiny, refl[[2, 1, 0]], ok, 0.5, offset=0.0, scale=1 / 3000.0)
        m = compare(tiny, out, "s2_l2a", ref, "UInt16 nodata, --bands 3,2,1 --scale-range 0,3000")
        assert m["grid"]["validity_mask"] == "nodata"
        assert m["parameters"]["bands"] == [3, 2, 1]
        assert abs(m["parameters"]["scale"] - 1 / 3000.0) < 1e-15 and m["parameters"]["offset"] == 0

        # Same scene, --min-valid 0.9: fewer chips.
        out9 = os.path.join(d, "out9")
        L.classify("-q", "-m", tiny.path, "-o", out9, "--chip", CHIP, "--bands", "3,2,1",
                   "--scale-range", "0,3000", "--probs-type", "Float32", "--min-valid", "0.9",
                   scene)
        ref9 = expected(tiny, refl[[2, 1, 0]], ok, 0.9, offset=0.0, scale=1 / 3000.0)
        assert (~np.isnan(ref9[..., 0])).sum() < (~np.isnan(ref[..., 0])).sum()
        compare(tiny, out9, "s2_l2a", ref9, "--min-valid 0.9")

        # Byte RGBA: alpha 0 marks what is not imaged.
        rgb = L.texture(22, 3, H, W)
        alpha = np.where(ok, 255, 0).astype(np.uint8)
        scene = os.path.join(d, "rgba.tif")
        L.make_scene(scene, np.concatenate([rgb, alpha[None]]), GT, 32721, alpha=True)
        L.classify("-q", "-m", tiny.path, "-o", out, "--chip", CHIP, "--probs-type", "Float32",
                   scene)
        m = compare(tiny, out, "rgba", expected(tiny, rgb, ok, 0.5), "Byte RGBA alpha")
        assert m["grid"]["validity_mask"] == "alpha"

        # All nodata: a scene done with a warning (tests/security/test_empty_scenes.py).


ct.main(run)
