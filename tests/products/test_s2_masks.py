"""Sentinel-2 quality masks: the L2A scene classification (SCL, 20 m) and
the L1C MSK_CLASSI cloud mask (60 m, baseline >= 04.00), read onto the 10 m
grid by nearest neighbour (each 10 m pixel takes the mask pixel under its
centre). Chips with less than --min-valid usable pixels are obscured (not
classified, counted apart from nodata); in classified chips unusable pixels
are set to the mean (0). The expected usable pixels come from GDAL's JP2
driver reading the mask files and the class lists of ESA's Products
Specification Document. Fixtures: fixtures.py.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import canopytest as ct  # noqa: E402
import fixtures as F  # noqa: E402

CHIP = 16
DEFAULT_BAD = [0, 1, 3, 8, 9, 10]


def nearest(mask, factor, n):
    """Mask pixel under each fine pixel's centre: index (i + 0.5) / factor."""
    idx = np.floor((np.arange(n) + 0.5) / factor).astype(int)
    return mask[np.ix_(idx, idx)]


def expect(j, chips, refl, ok, use, min_valid, what):
    """Cells classified / obscured / nodata and chip values as the masks say."""
    rows, cols = j["rows"], j["cols"]
    k = 0
    n_obs = 0
    for r in range(rows):
        for c in range(cols):
            win = (slice(r * CHIP, (r + 1) * CHIP), slice(c * CHIP, (c + 1) * CHIP))
            v = ok[win].mean()
            u = (ok & use)[win].mean()
            cell = j["cells"][r * cols + c]
            assert abs(cell[0] - v) < 1e-6 and abs(cell[1] - u) < 1e-6, (what, r, c, cell, v, u)
            obscured = v >= min_valid and v > 0 and (u < min_valid or u == 0)
            classified = v >= min_valid and v > 0 and not obscured
            assert cell[2] == int(obscured), (what, r, c, cell)
            n_obs += obscured
            if not classified:
                continue
            assert j["chips"][k][:2] == [r, c], (what, j["chips"][k], r, c)
            good = (ok & use)[win]
            want = np.where(good, refl[(slice(None),) + win], 0.0)
            assert np.abs(chips[k] - want).max() <= 1e-6, (what, r, c)
            assert j["chips"][k][2] == int(not good.all())
            k += 1
    assert k == len(chips) == j["stats"]["chips"], (what, k, len(chips))
    assert j["stats"]["obscured"] == n_obs, (what, j["stats"], n_obs)
    print("%s: %d chips classified, %d obscured, as the mask says" % (what, k, n_obs))
    return n_obs


def run():
    with ct.tmpdir() as d:
        # SCL 24 x 24 at 20 m under a 48 x 48 10 m scene: each 16-pixel chip
        # covers 8 x 8 SCL pixels.
        scl = np.full((24, 24), 4, np.uint8)          # vegetation
        scl[0:8, 8:16] = 9                            # chip (0, 1): cloud high proba
        scl[8:11, 8:16] = 8                           # chip (1, 1): 3/8 cloud -> classified
        scl[16:22, 16:24] = 3                         # chip (2, 2): 6/8 shadow -> obscured
        scl[16:24, 0:8] = 2                           # chip (2, 0): dark features: usable
        scl[5, 20] = 10                               # one cirrus pixel in chip (0, 2)
        p = F.s2_product(d, level="L2A", baseline="05.09", scl=scl, seed=8)
        scl_gdal = F.gdal_read(F.band_file(p, "SCL", 20))
        assert np.array_equal(scl_gdal, scl)
        dn = np.stack([F.gdal_read(F.band_file(p, b, 10)).astype(float)
                       for b in ("B04", "B03", "B02")])
        refl = (dn - 1000) / 10000
        ok = (dn != 0).all(axis=0)
        scl10 = nearest(scl_gdal, 2, 48)
        j, chips = F.dump(p.path, d, "--names", "red,green,blue")
        assert j["qmask_kind"] == "scl" and "0 1 3 8 9 10" in j["product"]["quality_mask"]["rule"]
        n = expect(j, chips, refl, ok, ~np.isin(scl10, DEFAULT_BAD), 0.5, "SCL default classes")
        assert n == 2

        # Configurable classes: dark features (2) unusable too.
        j, chips = F.dump(p.path, d, "--names", "red,green,blue",
                          "--scl-unusable", "0,1,2,3,8,9,10")
        n = expect(j, chips, refl, ok, ~np.isin(scl10, DEFAULT_BAD + [2]), 0.5,
                   "SCL classes + 2")
        assert n == 3
        # A stricter --min-valid: chip (1, 1) (5/8 usable) obscured as well.
        j, chips = F.dump(p.path, d, "--names", "red,green,blue", "--min-valid", "0.7")
        assert expect(j, chips, refl, ok, ~np.isin(scl10, DEFAULT_BAD), 0.7,
                      "SCL, min-valid 0.7") == 3
        # --mask none: every chip classified.
        j, chips = F.dump(p.path, d, "--names", "red,green,blue", "--mask", "none")
        assert j["stats"]["obscured"] == 0 and j["stats"]["chips"] == 9

        # A missing SCL layer is an error, not a product that is all "no data".
        os.remove(F.band_file(p, "SCL", 20))
        j, err = F.dump(p.path, d, "--names", "red,green,blue", check=False)
        assert j is None and "SCL" in err and "--mask none" in err, err

        # L1C, baseline 05.09: MSK_CLASSI at 60 m (8 x 8 under 48 x 48).
        classi = np.zeros((3, 8, 8), np.uint8)
        classi[0, 0:3, 0:3] = 1     # opaque clouds over chip (0, 0) (18 x 18 px)
        classi[1, 5:8, 5:8] = 1     # cirrus over chip (2, 2)
        classi[2, 0:3, 5:8] = 1     # snow over chip (0, 2): usable
        l1c = F.s2_product(d, level="L1C", baseline="05.09", start="20230616T100559",
                           classi=classi, seed=9)
        import glob
        cg = F.gdal_read(glob.glob(os.path.join(l1c.path, "GRANULE", "*", "QI_DATA",
                                                "MSK_CLASSI_B00.jp2"))[0])
        assert np.array_equal(cg, classi)
        dn = np.stack([F.gdal_read(F.band_file(l1c, b, 10)).astype(float)
                       for b in ("B04", "B03", "B02")])
        use = (nearest(cg[0], 6, 48) == 0) & (nearest(cg[1], 6, 48) == 0)
        j, chips = F.dump(l1c.path, d, "--names", "red,green,blue")
        assert j["qmask_kind"] == "msk_classi"
        assert expect(j, chips, (dn - 1000) / 10000, (dn != 0).all(axis=0), use, 0.5,
                      "L1C MSK_CLASSI") == 2
        # ... and without it, an error naming the file and --mask none.
        os.remove(glob.glob(os.path.join(l1c.path, "GRANULE", "*", "QI_DATA",
                                         "MSK_CLASSI_B00.jp2"))[0])
        j, err = F.dump(l1c.path, d, "--names", "red,green,blue", check=False)
        assert j is None and "MSK_CLASSI_B00.jp2, delivered from" in err and \
            "--mask none" in err, err

        # L1C before 04.00: GML cloud polygons (MSK_CLOUDS_B00.gml), rasterised
        # at 60 m: opaque over chip (1, 1), cirrus over most of chip (0, 2).
        clouds = [("OPAQUE", 3, 3, 5, 5), ("CIRRUS", 5, 0, 8, 2)]
        old = F.s2_product(d, level="L1C", baseline="02.09", start="20190616T100559", seed=10,
                           clouds=clouds)
        m60 = np.zeros((8, 8), bool)
        for _, c0, r0, c1, r1 in clouds:
            m60[r0:r1, c0:c1] = True
        dn = np.stack([F.gdal_read(F.band_file(old, b, 10)).astype(float)
                       for b in ("B04", "B03", "B02")])
        j, chips = F.dump(old.path, d, "--names", "red,green,blue")
        assert j["qmask_kind"] == "msk_clouds" and j["warnings"] == [], j
        assert [b["add"] for b in j["product"]["bands"]] == [0] * 3
        assert expect(j, chips, dn / 10000, (dn != 0).all(axis=0), ~nearest(m60, 6, 48), 0.5,
                      "L1C 02.09 MSK_CLOUDS GML") == 2
        os.remove(glob.glob(os.path.join(old.path, "GRANULE", "*", "QI_DATA",
                                         "MSK_CLOUDS_B00.gml"))[0])
        j, err = F.dump(old.path, d, "--names", "red,green,blue", check=False)
        assert j is None and "MSK_CLOUDS_B00.gml, delivered before" in err and \
            "--mask none" in err, err
        # an empty GML mask (no clouds): every chip classified
        clear = F.s2_product(d, level="L1C", baseline="02.09", start="20190617T100559", seed=12)
        j, chips = F.dump(clear.path, d, "--names", "red,green,blue")
        assert j["qmask_kind"] == "msk_clouds" and j["stats"]["obscured"] == 0
        assert j["stats"]["chips"] == 9


ct.main(run)
