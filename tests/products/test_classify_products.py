"""canopy classify on products, one command each: a Sentinel-2 L2A .SAFE
folder and its .zip, a PlanetScope AnalyticMS_SR scene with its UDM2. A
tiny model whose canopy.bands are ["red", "green", "blue"] (scale 1:
reflectance in) gets, per chip, the reflectance the documented formulas
give from GDAL reads of the band files; its probabilities match PyTorch on
those chips; chips under clouds (SCL, UDM2) are obscured: nodata in probs
and 255 in masks, counted in the manifest and the summary; outputs are named
after the product; a second run is up to date and another --scl-unusable is
not; a product missing a band fails with a message while the rest of the
batch is done; the JSONL stream counts chips.obscured and carries warnings. Fixtures: fixtures.py (ESA PSD, GDAL's SENTINEL2 driver page,
Planet's product documentation).
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "scene"))
import canopytest as ct  # noqa: E402
import test_classify_lib as L  # noqa: E402
import fixtures as F  # noqa: E402

CHIP = 32
BAD = [0, 1, 3, 8, 9, 10]


def expected(tiny, refl, use, rows, cols):
    """(rows, cols, labels): PyTorch on each chip with unusable pixels at
    the mean; NaN where the chip is obscured (usable < 0.5)."""
    norm = tiny.normalise(refl, scale=1.0)
    out = np.full((rows, cols, len(tiny.labels)), np.nan)
    for r in range(rows):
        for c in range(cols):
            u = np.zeros((CHIP, CHIP), bool)
            part = use[r * CHIP:(r + 1) * CHIP, c * CHIP:(c + 1) * CHIP]
            u[:part.shape[0], :part.shape[1]] = part
            if u.mean() < 0.5:
                continue
            x = np.zeros((tiny.C, CHIP, CHIP))
            x[:, :part.shape[0], :part.shape[1]] = norm[:, r * CHIP:(r + 1) * CHIP,
                                                        c * CHIP:(c + 1) * CHIP]
            x[:, ~u] = 0.0
            out[r, c] = tiny.probs(x[None])[0]
    return out


def check(tiny, out, name, ref, n_obscured, kind, what, n_nodata=0):
    o = L.outputs(out, name)
    probs, names, _ = L.read_probs(o["probs"])
    assert names == tiny.labels
    assert np.array_equal(np.isnan(probs), np.isnan(ref)), "%s: classified cells differ" % what
    err = np.nanmax(np.abs(probs - ref))
    assert err <= 1e-4, "%s: max |p - p_torch| = %g" % (what, err)
    masks, _, _ = L.read_masks(o["masks"])
    assert (masks[np.isnan(probs)] == 255).all()
    m = L.load_manifest(o["manifest"])
    assert m["chips"]["obscured"] == n_obscured and m["chips"]["nodata"] == n_nodata, m["chips"]
    assert m["parameters"]["product"]["kind"] == kind, m["parameters"]["product"]
    print("%s: outputs %s.*, %d obscured, max |p - p_torch| = %.1e" % (what, name, n_obscured,
                                                                      err))
    return m


def run():
    with ct.tmpdir() as d:
        tiny = L.Tiny(os.path.join(d, "rgb.onnx"), seed=21, input_size=CHIP,
                      bands=["red", "green", "blue"], scale=1.0)
        # Sentinel-2 L2A, 96 x 96 at 10 m, SCL 48 x 48: clouds over chip (0, 1).
        scl = np.full((48, 48), 4, np.uint8)
        scl[0:16, 16:32] = 9
        scl[20:23, 0:16] = 3   # a little shadow in chip (1, 0): classified, partial
        s2 = F.s2_product(d, level="L2A", baseline="05.09", size10=96, scl=scl, seed=22)
        dn = np.stack([F.gdal_read(F.band_file(s2, b, 10)).astype(float)
                       for b in ("B04", "B03", "B02")])
        use = (dn != 0).all(axis=0) & ~np.isin(np.repeat(np.repeat(scl, 2, 0), 2, 1), BAD)
        ref = expected(tiny, (dn - 1000) / 10000, use, 3, 3)
        out = os.path.join(d, "out")
        p = L.classify("-m", tiny.path, "-o", out, "--gsd", "native", "--chip", CHIP,
                       "--probs-type", "Float32", s2.path)
        assert "1 obscured by scl" in p.stdout, p.stdout
        m = check(tiny, out, s2.name, ref, 1, "sentinel2-l2a", "L2A .SAFE")
        assert [b["is"] for b in m["parameters"]["product"]["bands"]] == ["B4 red", "B3 green",
                                                                         "B2 blue"]
        p = L.classify("-m", tiny.path, "-o", out, "--gsd", "native", "--chip", CHIP,
                       "--probs-type", "Float32", s2.path)
        assert "up to date" in p.stdout, p.stdout
        p = L.classify("-m", tiny.path, "-o", out, "--gsd", "native", "--chip", CHIP,
                       "--probs-type", "Float32", "--scl-unusable", "0,1,8,9,10", s2.path)
        assert "up to date" not in p.stdout, p.stdout

        # The zip, in a batch with a product missing a band: one fails, one is done.
        z = F.zip_product(s2, d)
        os.makedirs(os.path.join(d, "b"))
        broken = F.s2_product(os.path.join(d, "b"), level="L2A", start="20230620T100559",
                              skip_bands=("B03",), size10=96, seed=23)
        out2 = os.path.join(d, "out2")
        p = L.classify("-m", tiny.path, "-o", out2, "--gsd", "native", "--chip", CHIP,
                       "--probs-type", "Float32", broken.path, z, check=False)
        assert p.returncode == 1, (p.returncode, p.stderr)
        assert "band B03 is missing" in p.stderr, p.stderr
        assert not any(f.startswith(broken.name) for f in os.listdir(out2))
        check(tiny, out2, s2.name, ref, 1, "sentinel2-l2a", "L2A .zip (batch with a broken one)")

        # PlanetScope AnalyticMS_SR + UDM2: bands 3, 2, 1; / 10000; cloud on chip (1, 0).
        udm = np.zeros((8, 70, 100), np.uint8)
        udm[0] = 1
        udm[0, 32:64, 0:32] = 0
        udm[5, 32:64, 0:32] = 1
        ps = F.planet_scene(d, w=100, h=70, udm=udm, seed=24)
        dn = ps.dn.astype(float)
        use = (dn != 0).all(axis=0) & (udm[0] == 1)
        ref = expected(tiny, dn[[2, 1, 0]] / 10000, use, 3, 4)
        out3 = os.path.join(d, "out3")
        p = L.classify("-m", tiny.path, "-o", out3, "--gsd", "native", "--chip", CHIP,
                       "--probs-type", "Float32", ps.path)
        assert "warning" not in p.stderr, p.stderr
        n_obs = int(json.load(open(L.outputs(out3, ps.name)["manifest"]))["chips"]["obscured"])
        assert n_obs == 1  # chip (1, 0) under the cloud
        # 6 edge cells (a 6-row last row, a 4-column last column) are nodata
        check(tiny, out3, ps.name, ref, 1, "planetscope-sr", "PlanetScope SR + UDM2", n_nodata=6)

        # The event stream: chips.obscured, and a warning event for a numeric
        # mapping that feeds blue as red (a model without band names).
        plain = L.Tiny(os.path.join(d, "plain.onnx"), seed=25, input_size=CHIP, scale=1.0)
        p = L.classify("-m", plain.path, "-o", os.path.join(d, "out6"), "--gsd", "native",
                       "--chip", CHIP, "--progress=jsonl", ps.path)
        ev = [json.loads(x) for x in p.stdout.splitlines()]
        done = [e for e in ev if e["event"] == "scene_done"][0]
        assert done["chips"]["obscured"] == 1 and done["chips"]["nodata"] == 6, done["chips"]
        warn = [e for e in ev if e["event"] == "warning"]
        assert warn and warn[0]["index"] == 1 and "--bands 3,2,1" in warn[0]["message"], warn
        assert done["name"] == ps.name

        # Folder expansion (--list): a .SAFE is one scene, the UDM2 is not one.
        inbox = os.path.join(d, "inbox")
        os.mkdir(inbox)
        F.s2_product(inbox, level="L2A", start="20230701T100559", size10=48, seed=26)
        F.planet_scene(inbox, seed=27)
        p = L.classify("--list", "--progress=jsonl", "-o", os.path.join(d, "out7"), inbox)
        listed = [json.loads(x) for x in p.stdout.splitlines()]
        listed = [(os.path.basename(e["scene"]), e["name"]) for e in listed
                  if e["event"] == "scene"]
        assert listed == [
            ("20230704_133412_56_24b2_3B_AnalyticMS_SR.tif",
             "20230704_133412_56_24b2_3B_AnalyticMS_SR"),
            ("S2B_MSIL2A_20230701T100559_N0509_R022_T33UUP_20230615T130000.SAFE",
             "S2B_MSIL2A_20230701T100559_N0509_R022_T33UUP_20230615T130000")], listed

        # canopy info MODEL SCENE: the mapping as classify reads it.
        info = json.loads(ct.canopy("info", "--json", tiny.path, ps.path).stdout)
        assert [b["band"] for b in info["scene"]["bands"]] == [3, 2, 1], info
        assert info["name"] == ps.name and info["warnings"] == []
        meta = json.loads(ct.canopy("info", "--json", tiny.path).stdout)["metadata"]
        assert meta["bands"] == ["red", "green", "blue"], meta["bands"]

        # export-onnx --bands by name and --trained-on; a visual-JPEG model on
        # L2A reflectance without --scale-range warns with the range to give.
        vis = os.path.join(d, "visual.onnx")
        ct.run([ct.PYTHON3, ct.script("export-onnx"), "--arch", "resnet18", "--random-weights",
                "--widths", "8,8,16,16", "--input-size", "32", "--bands", "red,green,blue",
                "--trained-on", "planet-visual-jpeg", "-q", "-o", vis])
        meta = json.loads(ct.canopy("info", "--json", vis).stdout)["metadata"]
        assert meta["bands"] == ["red", "green", "blue"] and \
            meta["trained_on"] == "planet-visual-jpeg", meta
        p = L.classify("-m", vis, "-o", os.path.join(d, "out4"), "--gsd", "native", "--chip",
                       CHIP, s2.path)
        assert "planet-visual-jpeg" in p.stderr and "--scale-range 0,0.3" in p.stderr, p.stderr
        p = L.classify("-m", vis, "-o", os.path.join(d, "out5"), "--gsd", "native", "--chip",
                       CHIP, "--scale-range", "0,0.3", s2.path)
        assert "warning" not in p.stderr, p.stderr
        print("export-onnx --bands red,green,blue --trained-on: info shows them; the model "
              "warns on L2A without --scale-range")


ct.main(run)
