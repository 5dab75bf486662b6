"""canopy classify on a UTM scene whose size is not a multiple of the chip:
chip-grid georeferencing, per-chip probabilities against PyTorch on the
same pixels, partial and skipped edge chips, masks = probs >= threshold,
marker polygons holding exactly the positive chips, the manifest, chips
resized from 64 to 32 px against canopy predict on gdal_translate
cut-outs, and --tta against the mean of the 8 rotations/flips in PyTorch --
outputs read back through GDAL/OGR and hashlib as independent readers.
"""
import os
import sys

import numpy as np
from osgeo import gdal, osr

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import canopytest as ct  # noqa: E402
import test_classify_lib as L  # noqa: E402

CHIP = SIZE = 32  # chip = model input at the scene's GSD (the model states
                  # none): the reference input is the scene's pixels themselves
W, H = 372, 253
GT = [500010.0, 3.0, 0.0, 8899980.0, 0.0, -3.0]


def reference(tiny, arr, ok, min_valid):
    """Per grid cell: valid fraction, partial flag, PyTorch probabilities."""
    rows, cols = -(-H // CHIP), -(-W // CHIP)
    norm = tiny.normalise(arr)
    probs = np.full((rows, cols, len(tiny.labels)), np.nan)
    partial = set()
    for r in range(rows):
        for c in range(cols):
            f = L.valid_fraction(ok, c * CHIP, r * CHIP, CHIP)
            if f < min_valid or f == 0:
                continue
            if f < 1:
                partial.add((r, c))
            x = L.padded_chip(norm, ok, c * CHIP, r * CHIP, CHIP)
            probs[r, c] = tiny.probs(x[None])[0]
    return probs, partial


def thresholds_between(ref):
    """Per label, a threshold halfway between two neighbouring reference
    probabilities near the median, so that masks split the chips and no
    chip sits within rounding of its threshold."""
    out = []
    for k in range(ref.shape[-1]):
        v = np.sort(ref[..., k][~np.isnan(ref[..., k])])
        gaps = np.diff(v)
        mid = len(v) // 2
        cand = [i for i in range(max(1, mid - 4), min(len(v) - 1, mid + 4)) if gaps[i - 1] > 2e-3]
        i = cand[0] if cand else mid
        out.append(float((v[i - 1] + v[i]) / 2))
    return out


def run():
    with ct.tmpdir() as d:
        tiny = L.Tiny(os.path.join(d, "tiny.onnx"), seed=3, input_size=SIZE)
        arr = L.texture(7, 3, H, W)
        scene = os.path.join(d, "utm20s_scene.tif")
        L.make_scene(scene, arr, GT, 32720)
        ok = np.ones((H, W), bool)
        ref, partial = reference(tiny, arr, ok, 0.6)
        rows, cols = ref.shape[:2]
        # 372 = 11 x 32 + 20: last column 62.5% valid (partial); 253 = 7 x 32
        # + 29: last row 90.6% (partial); the corner 56.6% < 0.6: skipped.
        assert (rows, cols) == (8, 12)
        assert np.isnan(ref[7, 11]).all() and not np.isnan(ref[7, 10]).any()
        thr = thresholds_between(ref)
        thr_args = []
        for lab, t in zip(tiny.labels, thr):
            thr_args += ["--threshold", "%s=%.9g" % (lab, t)]

        out = os.path.join(d, "out")
        p = L.classify("-m", tiny.path, "-o", out, "--chip", CHIP, "--min-valid", 0.6,
                       "--probs-type", "Float32", *thr_args, scene)
        lines = [x for x in p.stdout.splitlines() if x.strip()]
        assert len(lines) == 1 and scene in lines[0] and "95 chips" in lines[0], p.stdout
        o = L.outputs(out, "utm20s_scene")
        for k, path in o.items():
            assert os.path.isfile(path), "missing %s" % path
        left = [f for f in os.listdir(out) if f.startswith(".")]
        assert not left, "temporaries left: %s" % left

        # Grid: same CRS, origin = scene origin, pixel = chip x scene pixel.
        probs, names, ds = L.read_probs(o["probs"])
        assert names == tiny.labels, names
        assert (ds.RasterXSize, ds.RasterYSize) == (cols, rows)
        g = ds.GetGeoTransform()
        want = [GT[0], GT[1] * CHIP, 0.0, GT[3], 0.0, GT[5] * CHIP]
        for a, b in zip(g, want):
            assert abs(a - b) <= 1e-6 * abs(GT[1]), (g, want)
        srs, ssrs = osr.SpatialReference(), osr.SpatialReference()
        srs.ImportFromWkt(ds.GetProjection())
        ssrs.ImportFromEPSG(32720)
        assert srs.IsSame(ssrs), ds.GetProjection()
        assert ds.GetRasterBand(1).DataType == gdal.GDT_Float32

        # Probabilities: PyTorch on the same pixels; NaN where not classified.
        assert np.array_equal(np.isnan(probs), np.isnan(ref)), "classified cells differ"
        err = np.nanmax(np.abs(probs - ref))
        assert err <= 1e-4, "max |p_canopy - p_torch| = %g" % err
        print("probabilities: max |p_canopy - p_torch| = %.2e over %d chips" % (
            err, int((~np.isnan(ref[..., 0])).sum())))

        # Masks: 1 where p >= threshold, 0 below, nodata where not classified.
        masks, nds, mds = L.read_masks(o["masks"])
        assert mds.GetGeoTransform() == g
        assert [mds.GetRasterBand(b + 1).GetDescription() for b in range(mds.RasterCount)] == tiny.labels
        th = np.array(thr, np.float32)
        for k in range(len(tiny.labels)):
            cls = ~np.isnan(probs[..., k])
            want = (probs[..., k].astype(np.float32) >= th[k]).astype(np.uint8)
            assert np.array_equal(masks[..., k][cls], want[cls]), tiny.labels[k]
            assert (masks[..., k][~cls] == nds[k]).all() and nds[k] not in (0, 1), nds[k]
            # and the same decision from PyTorch's probabilities
            assert np.array_equal(want[cls], (ref[..., k][cls] >= thr[k]).astype(np.uint8))

        # Markers: polygons hold exactly the positive chips of each marker label.
        bounds = L.scene_lonlat_bounds(scene)
        n = L.check_markers(o["markers"], probs, thr, tiny.labels, tiny.markers, g,
                            ds.GetProjection(), bounds, L.scene_extent(scene))
        assert n > 0, "no marker polygon"
        m = L.load_manifest(o["manifest"])
        gj = L.load_manifest(o["markers"])  # the GeoJSON text itself (OGR retypes dates)
        assert gj["type"] == "FeatureCollection" and len(gj["features"]) == n
        for f in gj["features"]:
            props = f["properties"]
            assert props["scene"] == "utm20s_scene" and props["model"] == "tiny", props
            assert props["run_utc"] == m["run_utc"] and props["run_utc"].endswith("Z"), props
        print("markers: %d polygons" % n)

        # Manifest: inputs, model hash, parameters, counts, partial chips.
        inp = m["inputs"]
        assert len(inp) == 1 and inp[0]["path"] == os.path.realpath(scene), inp
        assert inp[0]["sha256"] == L.sha256(scene) and inp[0]["size"] == os.path.getsize(scene)
        assert m["model"]["sha256"] == L.sha256(tiny.path), m["model"]
        version = ct.canopy("--version").stdout.split()[1]
        assert m["canopy_version"] == version, (m["canopy_version"], version)
        par = m["parameters"]
        assert par["chip"] == CHIP and par["stride"] == CHIP and par["input_size"] == SIZE
        assert par["bands"] == [1, 2, 3] and abs(par["min_valid"] - 0.6) < 1e-12
        for lab, t in zip(tiny.labels, thr):
            assert abs(par["thresholds"][lab] - t) < 1e-6, lab
        assert m["chips"]["classified"] == 95 and m["chips"]["skipped"] == 1
        assert {tuple(x) for x in m["chips"]["partial_cells"]} == partial, m["chips"]
        for k, lab in enumerate(tiny.labels):
            npos = int(np.nansum(ref[..., k] >= thr[k]))
            assert m["positive_chips"][lab] == npos, (lab, m["positive_chips"][lab], npos)
        for f in m["outputs"]:
            path = os.path.join(out, f["file"])
            assert L.sha256(path) == f["sha256"], f
        files = {f["file"] for f in m["outputs"]}
        assert {os.path.basename(o[k]) for k in ("probs", "masks", "markers")} <= files, files

        # Byte probabilities: the same values within the 1/255 quantisation.
        out8 = os.path.join(d, "out8")
        L.classify("-q", "-m", tiny.path, "-o", out8, "--chip", CHIP, "--min-valid", 0.6,
                   *thr_args, scene)
        p8, _, ds8 = L.read_probs(os.path.join(out8, "utm20s_scene.probs.tif"))
        assert ds8.GetRasterBand(1).DataType == gdal.GDT_Byte
        assert np.array_equal(np.isnan(p8), np.isnan(ref))
        # Byte 0..254 (255 is nodata): values above 254.5/255 clamp to 254.
        exp8 = np.minimum(ref, 254 / 255.0)
        err8 = np.nanmax(np.abs(p8 - exp8))
        assert err8 <= 0.5 / 255 + 1e-4, err8
        print("Byte probabilities within %.4f of PyTorch" % err8)

        # Chips of 64 px shrunk to the 32 px input: classify's probabilities
        # equal canopy predict's on the same chips cut out with
        # gdal_translate -srcwin -ot Float32 (predict resizes each one alone,
        # as classify does, in floating point -- GDAL would round a Byte
        # file's resampled values; partial chips, padded with the mean, are
        # left out).
        out64 = os.path.join(d, "out64")
        L.classify("-q", "-m", tiny.path, "-o", out64, "--chip", 64, "--probs-type", "Float32",
                   scene)
        p64, _, _ = L.read_probs(os.path.join(out64, "utm20s_scene.probs.tif"))
        m64 = L.load_manifest(os.path.join(out64, "utm20s_scene.manifest.json"))
        assert m64["grid"]["resampling"] == "bilinear", m64["grid"]
        cut, cells = os.path.join(d, "cut"), []
        os.makedirs(cut)
        for r in range(H // 64):
            for c in range(W // 64):
                f = os.path.join(cut, "chip_%d_%d.tif" % (r, c))
                gdal.Translate(f, scene, srcWin=[c * 64, r * 64, 64, 64],
                               outputType=gdal.GDT_Float32)
                cells.append((r, c, f))
        pr = ct.canopy("predict", "-m", tiny.path, "--probs", *[f for _, _, f in cells])
        rows_csv = [line.split(",") for line in pr.stdout.strip().splitlines()]
        assert rows_csv[0][1:] == tiny.labels, rows_csv[0]
        got = {row[0]: np.array([float(v) for v in row[1:]]) for row in rows_csv[1:]}
        worst = 0.0
        for r, c, f in cells:
            pp = got[os.path.splitext(os.path.basename(f))[0]]
            worst = max(worst, float(np.abs(pp - p64[r, c]).max()))
        assert worst <= 1e-5, "classify vs predict on gdal_translate chips: %g" % worst
        print("--chip 64 -> 32: %d chips equal canopy predict's on gdal_translate cut-outs "
              "(max diff %.1e)" % (len(cells), worst))

        # --tta: the mean over the 8 rotations/flips of each chip, in PyTorch.
        outt = os.path.join(d, "outtta")
        L.classify("-q", "-m", tiny.path, "-o", outt, "--chip", CHIP, "--min-valid", 0.6,
                   "--probs-type", "Float32", "--tta", scene)
        pt, _, _ = L.read_probs(os.path.join(outt, "utm20s_scene.probs.tif"))
        norm = tiny.normalise(arr)
        ok = np.ones((H, W), bool)
        worst = 0.0
        for r in range(rows):
            for c in range(cols):
                if np.isnan(ref[r, c, 0]):
                    assert np.isnan(pt[r, c]).all()
                    continue
                x = L.padded_chip(norm, ok, c * CHIP, r * CHIP, CHIP)
                views = [np.rot90(v, k, axes=(1, 2)) for v in (x, x.transpose(0, 2, 1))
                         for k in range(4)]
                want = tiny.probs(np.stack(views)).mean(axis=0)
                worst = max(worst, float(np.abs(pt[r, c] - want).max()))
        assert worst <= 1e-4, "--tta: max |p - mean of 8 PyTorch views| = %g" % worst
        assert L.load_manifest(os.path.join(outt, "utm20s_scene.manifest.json"))["parameters"]["tta"]
        print("--tta: within %.1e of the mean over the 8 dihedral views in PyTorch" % worst)


ct.main(run)
