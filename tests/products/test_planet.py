"""PlanetScope scenes: AnalyticMS_SR (blue, green, red, NIR; reflectance x
10000, Planet's product documentation) read by role as bands 3, 2, 1, 4 and
divided by 10000; a numeric mapping that feeds blue as red warns with the
--bands to give; the UDM2 beside the scene (band 1 clear) makes chips
obscured; --mask FILE; a missing UDM2 is a warning; a model trained on
visual JPEGs warns on reflectance without --scale-range. References: GDAL
reads of the files and the documented formula. Fixtures: fixtures.py.
"""
import os
import shutil
import sys

import numpy as np
from osgeo import gdal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import canopytest as ct  # noqa: E402
import fixtures as F  # noqa: E402

CHIP = 16


def run():
    with ct.tmpdir() as d:
        udm = np.zeros((8, 44, 60), np.uint8)
        udm[0] = 1
        udm[0, 0:16, 16:32] = 0      # chip (0, 1): cloud
        udm[5, 0:16, 16:32] = 1
        udm[0, 16:22, 32:48] = 0     # chip (1, 2): 6/16 rows haze -> classified, partial
        udm[3, 16:22, 32:48] = 1
        p = F.planet_scene(d, udm=udm)
        dn = gdal.Open(p.path).ReadAsArray().astype(float)
        assert np.array_equal(dn, p.dn)
        clear = gdal.Open(p.udm_path).ReadAsArray()[0] == 1

        j, chips = F.dump(p.path, d, "--names", "red,green,blue,nir")
        pr = j["product"]
        assert j["name"] == "20230704_133412_56_24b2_3B_AnalyticMS_SR", j["name"]
        assert pr["kind"] == "planetscope-sr" and [b["band"] for b in pr["bands"]] == [3, 2, 1, 4]
        assert [b["gain"] for b in pr["bands"]] == [1e-4] * 4
        assert pr["quality_mask"]["kind"] == "udm2" and j["warnings"] == [], j
        refl = dn[[2, 1, 0, 3]] / 10000
        ok = (dn != 0).all(axis=0)      # nodata 0 in the file
        use = ok & clear
        rows, cols = j["rows"], j["cols"]
        assert (rows, cols) == (3, 4)
        k = 0
        for r in range(rows):
            for c in range(cols):
                win = (slice(r * CHIP, (r + 1) * CHIP), slice(c * CHIP, (c + 1) * CHIP))
                sub_ok, sub_use = np.zeros((CHIP, CHIP), bool), np.zeros((CHIP, CHIP), bool)
                part_ok, part_use = ok[win], use[win]
                sub_ok[:part_ok.shape[0], :part_ok.shape[1]] = part_ok
                sub_use[:part_use.shape[0], :part_use.shape[1]] = part_use
                cell = j["cells"][r * cols + c]
                assert abs(cell[0] - sub_ok.mean()) < 1e-6 and abs(cell[1] - sub_use.mean()) < 1e-6
                obscured = sub_ok.mean() >= 0.5 and sub_use.mean() < 0.5
                assert cell[2] == int(obscured), (r, c, cell)
                if sub_ok.mean() < 0.5 or obscured:
                    continue
                want = np.zeros((4, CHIP, CHIP))
                want[:, :part_ok.shape[0], :part_ok.shape[1]] = refl[(slice(None),) + win]
                want[:, ~sub_use] = 0
                assert j["chips"][k][:2] == [r, c]
                assert np.abs(chips[k] - want).max() <= 1e-7, (r, c)
                k += 1
        assert j["stats"]["obscured"] == 1 and j["cells"][1][2] == 1
        assert j["cells"][cols + 2][2] == 0 and j["cells"][cols + 2][1] == 0.625
        print("AnalyticMS_SR by role: bands 3,2,1,4 / 10000; %d chips match, 1 obscured "
              "by the UDM2" % k)

        # The model's numeric 1,2,3 on a B,G,R,N file: a warning with the fix.
        j, _ = F.dump(p.path, d, "--bands", "1,2,3")
        w = " ".join(j["warnings"])
        assert "band 1 is blue" in w and "--bands 3,2,1" in w, j["warnings"]
        j, _ = F.dump(p.path, d, "--bands", "1,2,3,4")
        assert "--bands 3,2,1,4" in " ".join(j["warnings"]), j["warnings"]
        # ...but not when the user chose them.
        j, _ = F.dump(p.path, d, "--bands", "1,2,3", "--user-bands")
        assert j["warnings"] == [], j["warnings"]
        print("numeric 1,2,3 on AnalyticMS_SR: %s" % w)

        # A model trained on visual JPEGs, run on reflectance.
        j, _ = F.dump(p.path, d, "--names", "red,green,blue", "--trained-on",
                      "planet-visual-jpeg")
        assert any("--scale-range 0,0.3" in x for x in j["warnings"]), j["warnings"]
        j, _ = F.dump(p.path, d, "--names", "red,green,blue", "--trained-on",
                      "planet-visual-jpeg", "--scale-range-hi", "3000")
        assert any("reflectance" in x and "3000" in x for x in j["warnings"]), j["warnings"]

        # --mask FILE instead; no UDM2 at all: a warning, nothing masked.
        other = os.path.join(d, "other")
        os.mkdir(other)
        q = F.planet_scene(other, udm=udm, with_udm=False)
        j, _ = F.dump(q.path, d, "--names", "red,green,blue")
        assert j["stats"]["obscured"] == 0 and any("no UDM2" in x for x in j["warnings"])
        shutil.copy(p.udm_path, os.path.join(d, "elsewhere.tif"))
        j, _ = F.dump(q.path, d, "--names", "red,green,blue", "--mask",
                      os.path.join(d, "elsewhere.tif"))
        assert j["stats"]["obscured"] == 1 and j["warnings"] == []

        # Visual: red, green, blue as 1, 2, 3; no radiometry, no warning.
        vis = F.planet_scene(d, product="Visual")
        j, chips = F.dump(vis.path, d, "--bands", "1,2,3")
        assert j["product"]["kind"] == "planetscope-visual" and j["warnings"] == [], j
        assert [b["gain"] for b in j["product"]["bands"]] == [1, 1, 1]
        assert np.array_equal(chips[0][:, 1:, 1:], vis.dn[:, 1:16, 1:16].astype(np.float32))


ct.main(run)
