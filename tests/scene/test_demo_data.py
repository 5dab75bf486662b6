"""scripts/make-demo-data: georeferencing, ground truth, chip layout,
determinism and bad arguments, checked by reading its outputs back with
GDAL/OSR (scene, truth raster, JPEG and TIFF chips) and the csv module."""
import csv
import filecmp
import os
import sys

import numpy as np
from osgeo import gdal, osr

import canopytest as ct

gdal.UseExceptions()
sys.path.insert(0, os.path.join(ct.SRCDIR, "scripts"))
import canopy_labels  # noqa: E402
import demo_scenes  # noqa: E402

KAGGLE = set(canopy_labels.KAGGLE_LABELS)
WEATHER = {"clear", "partly_cloudy", "haze", "cloudy"}
GEN = ct.script("make-demo-data")


def gen(*args, check=True):
    return ct.run([ct.PYTHON3, GEN, "-q"] + [str(a) for a in args], check=check)


def check_tags(where, tags):
    assert tags, "%s: no tags" % where
    assert set(tags) <= KAGGLE, "%s: not Kaggle labels: %s" % (where, sorted(set(tags) - KAGGLE))
    assert len(tags) == len(set(tags)), "%s: repeated tag in %s" % (where, tags)
    w = [t for t in tags if t in WEATHER]
    assert len(w) == 1, "%s: %d weather labels in %s" % (where, len(w), tags)
    if "cloudy" in tags:
        assert tags == ["cloudy"], "%s: cloudy with other labels: %s" % (where, tags)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def check_scene(tmp):
    scene = os.path.join(tmp, "demo.tif")
    gen("--scene", scene, "--size", "1024", "--seed", 3)
    d = gdal.Open(scene)
    assert (d.RasterXSize, d.RasterYSize, d.RasterCount) == (1024, 1024, 3), "scene shape"
    assert all(d.GetRasterBand(b).DataType == gdal.GDT_Byte for b in (1, 2, 3)), "scene type"
    assert [d.GetRasterBand(b).GetColorInterpretation() for b in (1, 2, 3)] == \
        [gdal.GCI_RedBand, gdal.GCI_GreenBand, gdal.GCI_BlueBand], "band colours"
    srs = d.GetSpatialRef()
    assert srs is not None and srs.IsProjected(), "scene is not projected"
    assert srs.GetUTMZone() == -21, "expected UTM 21 south, got zone %d" % srs.GetUTMZone()
    srs.AutoIdentifyEPSG()
    assert srs.GetAuthorityCode(None) == "32721", srs.GetAuthorityCode(None)
    gt = d.GetGeoTransform()
    assert gt[1] == 3.0 and gt[5] == -3.0 and gt[2] == 0.0 and gt[4] == 0.0, "geotransform %s" % (gt,)
    assert gt[0] % 3 == 0 and gt[3] % 3 == 0, "origin not on the 3 m grid: %s" % (gt,)
    # The centre is the documented default (-56.0, -9.5), to a pixel.
    ll = osr.SpatialReference()
    ll.ImportFromEPSG(4326)
    ll.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    lon, lat, _ = osr.CoordinateTransformation(srs, ll).TransformPoint(gt[0] + 512 * 3, gt[3] - 512 * 3)
    assert abs(lon + 56.0) < 5e-5 and abs(lat + 9.5) < 5e-5, "centre %f %f" % (lon, lat)
    rgb = d.ReadAsArray()
    d = None

    # Ground truth CSV: a 4 x 4 chip grid, Kaggle labels, one weather label.
    rows = read_csv(os.path.join(tmp, "demo.truth.csv"))
    assert rows[0] == ["row", "col", "tags"], rows[0]
    grid = {}
    for r in rows[1:]:
        assert len(r) == 3, r
        tags = r[2].split()
        check_tags("truth %s,%s" % (r[0], r[1]), tags)
        assert tags == sorted(tags), "tags not sorted: %s" % r
        grid[int(r[0]), int(r[1])] = tags
    assert sorted(grid) == [(i, j) for i in range(4) for j in range(4)], sorted(grid)
    present = set(t for tags in grid.values() for t in tags) - WEATHER
    assert len(present) >= 6, "a demo scene should show many labels, got %s" % sorted(present)

    # Ground truth raster: same CRS, 768 m pixels, one band per label, 0/1,
    # agreeing with the CSV.
    t = gdal.Open(os.path.join(tmp, "demo.truth.tif"))
    assert (t.RasterXSize, t.RasterYSize, t.RasterCount) == (4, 4, 17)
    tgt = t.GetGeoTransform()
    assert tgt == (gt[0], 768.0, 0.0, gt[3], 0.0, -768.0), tgt
    assert t.GetSpatialRef().IsSame(srs), "truth CRS differs from the scene's"
    names = [t.GetRasterBand(b + 1).GetDescription() for b in range(17)]
    assert names == sorted(KAGGLE), names
    truth = t.ReadAsArray()
    t = None
    assert set(np.unique(truth)) <= {0, 1}
    for (i, j), tags in grid.items():
        assert sorted(n for k, n in enumerate(names) if truth[k, i, j]) == tags, (i, j)

    # The pixels say what the truth says: opaque cloud is bright, chips of
    # only forest are green and dark.
    means = {(i, j): rgb[:, i * 256:(i + 1) * 256, j * 256:(j + 1) * 256].reshape(3, -1).mean(1)
             for (i, j) in grid}
    for key, tags in grid.items():
        if tags == ["cloudy"]:
            assert means[key].mean() > 170, "cloudy chip %s is dark: %s" % (key, means[key])
        if tags in (["clear", "primary"],):
            m = means[key]
            assert m[1] > m[0] and m.mean() < 130, "forest chip %s: mean RGB %s" % (key, m)

    # Determinism: same seed, same bytes; another seed, other pixels.
    again = os.path.join(tmp, "again.tif")
    gen("--scene", again, "--size", "1024", "--seed", 3)
    for a, b in (("demo.tif", "again.tif"), ("demo.truth.csv", "again.truth.csv"),
                 ("demo.truth.tif", "again.truth.tif")):
        assert filecmp.cmp(os.path.join(tmp, a), os.path.join(tmp, b), shallow=False), \
            "%s and %s differ for the same seed" % (a, b)
    other = os.path.join(tmp, "other.tif")
    gen("--scene", other, "--size", "512x768", "--seed", 6, "--center=-61.5,-8.0")
    o = gdal.Open(other)
    assert (o.RasterXSize, o.RasterYSize) == (512, 768)
    assert o.GetSpatialRef().GetUTMZone() == -20, "lon -61.5 is UTM 20 south"
    assert not np.array_equal(o.ReadAsArray()[:, :512, :512], rgb[:, :512, :512])
    o = None
    assert len(read_csv(os.path.join(tmp, "other.truth.csv"))) == 1 + 2 * 3


def check_nir_scene(tmp):
    """--bands 4 --dtype UInt16: reflectance x 10000, vegetation bright in
    NIR, water dark."""
    scene = os.path.join(tmp, "nir.tif")
    gen("--scene", scene, "--size", "1024", "--seed", 3, "--bands", 4, "--dtype", "UInt16")
    d = gdal.Open(scene)
    assert d.RasterCount == 4 and d.GetRasterBand(4).DataType == gdal.GDT_UInt16
    assert d.GetRasterBand(4).GetDescription() == "nir"
    a = d.ReadAsArray().astype(np.float64) / 10000.0
    d = None
    rows = read_csv(os.path.join(tmp, "nir.truth.csv"))[1:]
    red, nir = a[0], a[3]
    ndvi = (nir - red) / np.maximum(nir + red, 1e-6)
    forest = [r for r in rows if r[2] == "clear primary"]
    assert forest, "no plain forest chip in the scene"
    for r in forest:
        i, j = int(r[0]), int(r[1])
        v = ndvi[i * 256:(i + 1) * 256, j * 256:(j + 1) * 256].mean()
        assert v > 0.6, "forest chip %s,%s: mean NDVI %.2f" % (i, j, v)
        n = nir[i * 256:(i + 1) * 256, j * 256:(j + 1) * 256].mean()
        assert 0.15 < n < 0.6, "forest NIR reflectance %.3f" % n
    # The same scene in Byte has the same truth (dtype changes values only).
    base = read_csv(os.path.join(tmp, "demo.truth.csv"))[1:]
    assert rows == base, "truth depends on --bands/--dtype"


def check_chips(tmp):
    out = os.path.join(tmp, "chips")
    gen("--chips", out, "--n", 24, "--seed", 3, "--bands", 4, "--rare-boost", 0.3)
    rows = read_csv(os.path.join(out, "train_v2.csv"))
    assert rows[0] == ["image_name", "tags"], rows[0]
    assert [r[0] for r in rows[1:]] == ["train_%d" % i for i in range(24)]
    for name, tags in rows[1:]:
        check_tags(name, tags.split())
    assert sorted(os.listdir(out)) == ["train-jpg", "train-tif", "train_v2.csv"], os.listdir(out)
    assert sorted(os.listdir(os.path.join(out, "train-jpg"))) == sorted("train_%d.jpg" % i for i in range(24))
    for i in (0, 17, 23):
        j = gdal.Open(os.path.join(out, "train-jpg", "train_%d.jpg" % i))
        assert j.GetDriver().ShortName == "JPEG"
        assert (j.RasterXSize, j.RasterYSize, j.RasterCount) == (256, 256, 3)
        assert j.GetRasterBand(1).DataType == gdal.GDT_Byte
        t = gdal.Open(os.path.join(out, "train-tif", "train_%d.tif" % i))
        assert (t.RasterXSize, t.RasterYSize, t.RasterCount) == (256, 256, 4)
        # The JPEG is the TIFF's RGB, up to JPEG loss.
        diff = np.abs(j.ReadAsArray().astype(int) - t.ReadAsArray()[:3].astype(int))
        assert diff.mean() < 4, "train_%d: JPEG and TIFF RGB differ by %.1f" % (i, diff.mean())
    # Same seed, same bytes, also with two processes.
    again = os.path.join(tmp, "chips2")
    gen("--chips", again, "--n", 24, "--seed", 3, "--bands", 4, "--rare-boost", 0.3, "--jobs", 2)
    cmp = filecmp.dircmp(out, again)
    assert not cmp.diff_files and not cmp.left_only and not cmp.right_only, "chips differ"
    for sub in ("train-jpg", "train-tif"):
        names = os.listdir(os.path.join(out, sub))
        match, mismatch, errors = filecmp.cmpfiles(os.path.join(out, sub), os.path.join(again, sub),
                                                   names, shallow=False)
        assert not mismatch and not errors, "%s differ for the same seed: %s" % (sub, mismatch + errors)


def check_label_statistics():
    """Sampled label sets follow the Kaggle figures (primary on 93 % of
    chips, clear 70 %, cloudy 5 %, agriculture 30 %; README of the label
    file) with exactly one weather label each."""
    rng = np.random.default_rng(11)
    n = 20000
    sets = [demo_scenes.sample_tags(rng) for _ in range(n)]
    for s in sets[:2000]:
        check_tags("sample", s)
    freq = {lab: sum(lab in s for s in sets) / n for lab in KAGGLE}
    for lab, want in (("primary", 0.927), ("clear", 0.702), ("partly_cloudy", 0.179),
                      ("cloudy", 0.052), ("agriculture", 0.304), ("water", 0.183), ("road", 0.199)):
        assert abs(freq[lab] - want) < 0.02, "%s: sampled %.3f, Kaggle %.3f" % (lab, freq[lab], want)


def check_bad_input(tmp):
    p = gen("--scene", os.path.join(tmp, "x.tif"), "--size", "1000", check=False)
    assert p.returncode == 2 and "256" in p.stderr, (p.returncode, p.stderr)
    p = gen(check=False)
    assert p.returncode == 2 and "nothing to do" in p.stderr, (p.returncode, p.stderr)
    p = gen("--scene", os.path.join(tmp, "x.tif"), "--center=-56,5", check=False)
    assert p.returncode == 2, (p.returncode, p.stderr)
    missing = os.path.join(tmp, "no", "such", "dir", "s.tif")
    p = gen("--scene", missing, "--size", "256", check=False)
    assert p.returncode == 1 and missing in p.stderr, (p.returncode, p.stderr)
    assert not os.path.exists(os.path.dirname(missing))
    # An existing, non-empty folder is not overwritten without --force...
    busy = os.path.join(tmp, "busy")
    os.mkdir(busy)
    with open(os.path.join(busy, "keep.txt"), "w") as f:
        f.write("mine\n")
    p = gen("--chips", busy, "--n", 2, check=False)
    assert p.returncode == 1 and busy in p.stderr and "--force" in p.stderr, (p.returncode, p.stderr)
    # ... and --force replaces only a chip folder.
    p = gen("--chips", busy, "--n", 2, "--force", check=False)
    assert p.returncode == 1 and os.path.exists(os.path.join(busy, "keep.txt")), p.stderr
    chips = os.path.join(tmp, "chips")
    gen("--chips", chips, "--n", 3, "--force")
    assert len(read_csv(os.path.join(chips, "train_v2.csv"))) == 4
    assert len(os.listdir(os.path.join(chips, "train-jpg"))) == 3, "old chips left behind"
    left = [f for f in os.listdir(tmp) if ".tmp-" in f]
    assert not left, "temporary files left: %s" % left


def test():
    with ct.tmpdir() as tmp:
        check_scene(tmp)
        check_nir_scene(tmp)
        check_chips(tmp)
        check_label_statistics()
        check_bad_input(tmp)


if __name__ == "__main__":
    ct.main(test)
