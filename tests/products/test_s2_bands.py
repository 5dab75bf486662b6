"""Sentinel-2 products as scenes: bands by role, by band name and by number,
the resolution chosen by the bands, and reflectance from the product's
metadata, checked pixel by pixel against GDAL's JP2 driver reading the band
files and the formulas of ESA's Products Specification Document:
  baseline >= 04.00: L2A BOA = (DN + BOA_ADD_OFFSET) / BOA_QUANTIFICATION_VALUE,
                     L1C TOA = (DN + RADIO_ADD_OFFSET) / QUANTIFICATION_VALUE;
  before 04.00:      DN / QUANTIFICATION_VALUE.
A product opens as its .SAFE folder, its .zip and its MTD_MSIL*.xml, and
its outputs are named after the product. Missing bands and metadata give a
message naming what is missing. Fixtures: fixtures.py (ESA PSD, GDAL's
SENTINEL2 driver page).
"""
import os
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import canopytest as ct  # noqa: E402
import fixtures as F  # noqa: E402

CHIP = 16


def reference(p, bands, res, offset, quant):
    """(C, H, W) reflectance from GDAL reads of the band files, with the
    nodata mask (DN 0)."""
    dn = np.stack([F.gdal_read(F.band_file(p, b, res)).astype(np.float64) for b in bands])
    for i, b in enumerate(bands):  # the fixture's own numbers agree with GDAL's read
        assert np.array_equal(dn[i], p.dn[b][res]), b
    return (dn + offset) / quant, (dn != 0).all(axis=0)


def check_chips(j, chips, refl, ok, what):
    """Every chip equals the reference reflectance on valid pixels and 0
    (the mean) elsewhere."""
    assert len(j["chips"]) == len(chips)
    err = 0.0
    for k, (r, c, partial) in enumerate(j["chips"]):
        win = (slice(r * CHIP, (r + 1) * CHIP), slice(c * CHIP, (c + 1) * CHIP))
        want = np.where(ok[win], refl[(slice(None),) + win], 0.0)
        e = np.abs(chips[k] - want).max()
        err = max(err, e)
        assert e <= 1e-6 * max(1.0, np.abs(want).max()), "%s: chip (%d, %d) differs by %g" % (
            what, r, c, e)
        assert partial == int(not ok[win].all()), (what, r, c)
    print("%s: %d chips match GDAL reads and the formula (max error %.2g)" % (
        what, len(chips), err))


def run():
    with ct.tmpdir() as d:
        l2a = F.s2_product(d, level="L2A", baseline="05.09", seed=3)
        assert l2a.offset == -1000

        # 1. Roles, three ways in, 10 m: B4, B3, B2, B8.
        refl, ok = reference(l2a, ["B04", "B03", "B02", "B08"], 10, -1000, 10000)
        zp = F.zip_product(l2a, d)
        for path in (l2a.path, l2a.path + "/", zp, os.path.join(l2a.path, "MTD_MSIL2A.xml")):
            j, chips = F.dump(path, d, "--names", "red,green,blue,nir")
            assert j["name"] == l2a.name, (path, j["name"])
            pr = j["product"]
            assert pr["kind"] == "sentinel2-l2a" and pr["resolution"] == "10m", pr
            assert [b["is"] for b in pr["bands"]] == ["B4 red", "B3 green", "B2 blue", "B8 nir"]
            assert [b["add"] for b in pr["bands"]] == [-1000] * 4
            assert j["warnings"] == [], j["warnings"]
            check_chips(j, chips, refl, ok, "L2A 05.09 roles via " + os.path.basename(path))

        # An MTD_MSIL2A.xml outside a .SAFE folder: named by its PRODUCT_URI.
        moved = os.path.join(d, "delivery-42")
        shutil.copytree(l2a.path, moved)
        j, _ = F.dump(os.path.join(moved, "MTD_MSIL2A.xml"), d, "--names", "red,green,blue")
        assert j["name"] == l2a.name, j["name"]

        # 2. Band names, leading zero or not; numeric 1,2,3 = B4, B3, B2 (no warning).
        for args in (["--names", "B04,B03,B02"], ["--names", "b4,B3,b02"], ["--bands", "1,2,3"]):
            j, chips = F.dump(l2a.path, d, *args)
            assert [b["is"] for b in j["product"]["bands"]] == ["B4 red", "B3 green", "B2 blue"]
            assert j["warnings"] == [], j["warnings"]
            check_chips(j, chips, refl[:3], ok, "L2A names %s" % args[1])

        # 3. 20 m bands: the 20 m subdataset, at 20 m.
        refl20, ok20 = reference(l2a, ["B05", "B8A", "B11"], 20, -1000, 10000)
        j, chips = F.dump(l2a.path, d, "--names", "rededge,nir08,B11", size=8)
        assert j["product"]["resolution"] == "20m" and j["width"] == 24
        globals()["CHIP"] = 8
        check_chips(j, chips, refl20, ok20, "L2A 20 m bands")
        globals()["CHIP"] = 16

        # 4. Before baseline 04.00: no offset.
        old = F.s2_product(d, level="L2A", baseline="03.01", start="20210615T100559", seed=4)
        refl_o, ok_o = reference(old, ["B04", "B03", "B02"], 10, 0, 10000)
        j, chips = F.dump(old.path, d, "--names", "red,green,blue")
        assert [b["add"] for b in j["product"]["bands"]] == [0] * 3
        assert "03.01" in j["product"]["radiometry"]
        check_chips(j, chips, refl_o, ok_o, "L2A 03.01")

        # 5. L1C, baseline 05.09: RADIO_ADD_OFFSET, QUANTIFICATION_VALUE (here 1000,
        # not 10000: taken from the metadata, never assumed).
        l1c = F.s2_product(d, level="L1C", baseline="05.09", start="20230616T100559", seed=5,
                           quant=1000, offset=-1000)
        refl1, ok1 = reference(l1c, ["B04", "B03", "B02", "B08"], 10, -1000, 1000)
        j, chips = F.dump(l1c.path, d, "--names", "red,green,blue,nir")
        assert j["product"]["kind"] == "sentinel2-l1c" and j["name"] == l1c.name
        check_chips(j, chips, refl1, ok1, "L1C 05.09 quantification 1000")

        # 6. What is missing is named.
        miss = F.s2_product(d, level="L2A", start="20230617T100559", skip_bands=("B04",), seed=6)
        j, err = F.dump(miss.path, d, "--names", "red,green,blue", check=False)
        assert j is None and "band B04 is missing" in err and "download it again" in err, err
        nometa = F.s2_product(d, level="L2A", start="20230618T100559", skip_mtd_offsets=True,
                              seed=7)
        j, err = F.dump(nometa.path, d, "--names", "red,green,blue", check=False)
        assert j is None and "BOA_ADD_OFFSET" in err and "05.09" in err, err
        j, err = F.dump(l2a.path, d, "--names", "red,green,swir99", check=False)
        assert j is None and "'swir99'" in err and "--bands" in err, err
        bare = os.path.join(d, "S2B_MSIL2A_20230619T100559_N0509_R022_T33UUP_X.SAFE")
        shutil.copytree(l2a.path, bare)
        os.remove(os.path.join(bare, "MTD_MSIL2A.xml"))
        j, err = F.dump(bare, d, "--names", "red,green,blue", check=False)
        assert j is None and "MTD_MSIL2A.xml" in err, err
        print("missing band, offsets, band name and metadata file: clear messages")


ct.main(run)
