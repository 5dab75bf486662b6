"""canopy classify as a batch tool: a folder with a corrupt TIFF (exit 1,
the other scenes complete, nothing left for the bad one), @list input, a
second run that writes nothing (same inputs, model and parameters), reruns
when a parameter, the scene or an output changes, a rotated scene, a
read-only output folder, duplicate scene names, usage errors (exit 2),
--split-masks, -of COG and -co.
"""
import os
import shutil
import stat
import subprocess
import sys
import time

import numpy as np
from osgeo import gdal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import canopytest as ct  # noqa: E402
import test_classify_lib as L  # noqa: E402

GT = [400020.0, 3.0, 0.0, 8950020.0, 0.0, -3.0]


def snapshot(folder):
    """{relative path: (mtime_ns, size)} of everything under folder."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for f in files + dirs:
            p = os.path.join(root, f)
            st = os.stat(p)
            out[os.path.relpath(p, folder)] = (st.st_mtime_ns, st.st_size)
    return out


def complete(out, name, labels):
    """The scene's outputs exist, open, and the manifest's checksums hold."""
    o = L.outputs(out, name)
    probs, names, ds = L.read_probs(o["probs"])
    assert names == labels and ds.RasterCount == len(labels)
    assert not np.isnan(probs).all()
    masks, _, _ = L.read_masks(o["masks"])
    assert masks.shape == probs.shape
    L.read_features(o["markers"])
    m = L.load_manifest(o["manifest"])
    for f in m["outputs"]:
        assert L.sha256(os.path.join(out, f["file"])) == f["sha256"], f
    return m


def read_only_run(tiny, scene, ro):
    """Runs classify into a folder it cannot write: chmod for a normal user;
    as root (who ignores permissions) a read-only bind mount in a private
    mount namespace, else the run as user nobody."""
    args = [ct.CANOPY, "classify", "-m", tiny.path, "-o", ro, "--chip", "64", scene]
    os.makedirs(ro)
    if os.geteuid() != 0:
        os.chmod(ro, 0o555)
        try:
            return ct.run(args, check=False)
        finally:
            os.chmod(ro, 0o755)
    script = 'mount --bind -o ro "$1" "$1" && shift && exec "$@"'
    p = ct.run(["unshare", "-m", "sh", "-c", script, "sh", ro] + args, check=False)
    if "mount" not in p.stderr and "unshare" not in p.stderr:
        return p
    os.chmod(ro, 0o555)
    for q in (os.path.dirname(ro), os.path.dirname(scene), os.path.dirname(tiny.path)):
        os.chmod(q, 0o755)
    return ct.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] + args,
                  check=False)


def run():
    with ct.tmpdir() as d:
        tiny = L.Tiny(os.path.join(d, "tiny.onnx"), seed=2, input_size=32)
        inbox = os.path.join(d, "inbox")
        os.makedirs(inbox)
        scenes = []
        for i, (w, h) in enumerate(((200, 150), (130, 190))):
            p = os.path.join(inbox, "scene_%d.tif" % i)
            L.make_scene(p, L.texture(40 + i, 3, h, w), GT, 32720)
            scenes.append(p)
        # A TIFF cut short: its header opens, its pixels are gone.
        big = L.texture(50, 3, 384, 384)
        bad = os.path.join(inbox, "corrupt.tif")
        L.make_scene(bad, big, GT, 32720)
        with open(bad, "r+b") as f:
            f.truncate(os.path.getsize(bad) // 2)
        with open(os.path.join(inbox, "notes.txt"), "w") as f:
            f.write("not a raster\n")

        out = os.path.join(d, "out")
        p = L.classify("-m", tiny.path, "-o", out, "--chip", 64, inbox, check=False)
        assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
        assert "corrupt.tif" in p.stderr and "scene_" not in p.stderr, p.stderr
        assert "notes" not in p.stderr + p.stdout
        lines = p.stdout.splitlines()
        assert sum(1 for x in lines if "scene_0.tif" in x) == 1, p.stdout
        assert sum(1 for x in lines if "scene_1.tif" in x) == 1, p.stdout
        for i in range(2):
            complete(out, "scene_%d" % i, tiny.labels)
        assert not [f for f in os.listdir(out) if "corrupt" in f], os.listdir(out)
        assert not [f for f in os.listdir(out) if f.startswith(".")], os.listdir(out)
        print("batch with a corrupt TIFF: exit 1,", p.stderr.strip().splitlines()[0])

        # Second run, same inputs through an @list: nothing written.
        lst = os.path.join(d, "scenes.txt")
        with open(lst, "w") as f:
            f.write("# good scenes\n%s\n\n%s\n" % (scenes[0], scenes[1]))
        before = snapshot(out)
        time.sleep(0.05)
        p = L.classify("-m", tiny.path, "-o", out, "--chip", 64, "@" + lst)
        assert p.stdout.count(": up to date (") == 2, p.stdout
        assert snapshot(out) == before, "a second run changed the outputs"
        print("second run: up to date, no file touched")

        # A different threshold is a different run.
        p = L.classify("-q", "-m", tiny.path, "-o", out, "--chip", 64, "--threshold", "road=0.9",
                       scenes[0])
        after = snapshot(out)
        assert after["scene_0.manifest.json"] != before["scene_0.manifest.json"]
        assert after["scene_1.manifest.json"] == before["scene_1.manifest.json"]
        m = L.load_manifest(os.path.join(out, "scene_0.manifest.json"))
        assert abs(m["parameters"]["thresholds"]["road"] - 0.9) < 1e-7
        # A touched scene (new mtime) is classified again, as is one whose
        # output was removed.
        os.utime(scenes[1], ns=(time.time_ns(), time.time_ns()))
        os.unlink(os.path.join(out, "scene_0.masks.tif"))
        p = L.classify("-m", tiny.path, "-o", out, "--chip", 64, "--threshold", "road=0.9",
                       *scenes)
        assert ": up to date (" not in p.stdout, p.stdout
        complete(out, "scene_0", tiny.labels)
        complete(out, "scene_1", tiny.labels)
        print("reruns after a parameter change, a touched scene, a removed output")

        # Rotated geotransform: a clear error, exit 1, nothing written.
        rot = os.path.join(d, "rotated.tif")
        L.make_scene(rot, np.zeros((3, 64, 64), np.uint8), [400000.0, 3.0, 0.4, 8950000.0, 0.4, -3.0],
                     32720)
        p = L.classify("-m", tiny.path, "-o", out, rot, check=False)
        assert p.returncode == 1 and "rotated" in p.stderr and "gdalwarp" in p.stderr, p.stderr
        assert not [f for f in os.listdir(out) if "rotated" in f]
        print("rotated:", p.stderr.strip())

        # Read-only output folder.
        ro = os.path.join(d, "readonly")
        p = read_only_run(tiny, scenes[0], ro)
        assert p.returncode == 1, (p.returncode, p.stderr)
        assert ro in p.stderr and "writable" in p.stderr, p.stderr
        assert os.listdir(ro) == [], os.listdir(ro)
        print("read-only folder:", p.stderr.strip())

        # Two scenes with one name would overwrite each other's outputs.
        other = os.path.join(d, "other")
        os.makedirs(other)
        twin = os.path.join(other, "scene_0.tif")
        shutil.copy(scenes[0], twin)
        out2 = os.path.join(d, "out2")
        p = L.classify("-m", tiny.path, "-o", out2, "--chip", 64, scenes[0], twin, check=False)
        assert p.returncode == 1 and "different -o" in p.stderr, p.stderr
        complete(out2, "scene_0", tiny.labels)

        # -q: silence on stdout; --split-masks, -of COG and -co.
        out3 = os.path.join(d, "out3")
        p = L.classify("-q", "-m", tiny.path, "-o", out3, "--chip", 64, "--split-masks", "-of",
                       "COG", "-co", "COMPRESS=LZW", scenes[0])
        assert p.stdout == "" and p.stderr == "", (p.stdout, p.stderr)
        m = complete(out3, "scene_0", tiny.labels)
        split = os.path.join(out3, "scene_0.masks")
        for lab in tiny.labels:
            f = os.path.join(split, lab + ".tif")
            assert os.path.isfile(f), f
            assert gdal.Open(f).RasterCount == 1
        files = {f["file"] for f in m["outputs"]}
        assert {"scene_0.masks/%s.tif" % lab for lab in tiny.labels} <= files, files
        ds = gdal.Open(os.path.join(out3, "scene_0.probs.tif"))
        assert ds.GetMetadataItem("LAYOUT", "IMAGE_STRUCTURE") == "COG", ds.GetMetadata("IMAGE_STRUCTURE")
        assert ds.GetMetadataItem("COMPRESSION", "IMAGE_STRUCTURE") == "LZW", \
            ds.GetMetadata("IMAGE_STRUCTURE")
        assert m["parameters"]["format"] == "COG" and m["parameters"]["split_masks"] is True
        assert m["parameters"]["creation_options"] == ["COMPRESS=LZW"]

        # Usage errors: exit 2 with a hint.
        bad_usage = [
            ["-m", tiny.path, scenes[0]],                                     # no -o
            ["-m", tiny.path, "-o", out3],                                    # no scene
            ["-m", tiny.path, "-o", out3, "--chip", "64", "--stride", "65", scenes[0]],
            ["-m", tiny.path, "-o", out3, "--bogus", scenes[0]],
            ["-m", tiny.path, "-o", out3, "--threshold", "nolabel=0.3", scenes[0]],
            ["-m", tiny.path, "-o", out3, "--threshold", "road=1.5", scenes[0]],
            ["-m", tiny.path, "-o", out3, "--bands", "1,2", scenes[0]],
            ["-m", tiny.path, "-o", out3, "--gsd", "fine", scenes[0]],
            ["-m", tiny.path, "-o", out3, "--scale-range", "10,0", scenes[0]],
            ["-m", tiny.path, "-o", out3, "--markers", "road,nolabel", scenes[0]],
            ["-m", tiny.path, "-o", out3, "-of", "PNG", scenes[0]],
        ]
        for args in bad_usage:
            p = L.classify(*args, check=False)
            assert p.returncode == 2 and "classify" in p.stderr, (args, p.returncode, p.stderr)
        p = L.classify("-m", os.path.join(d, "missing.onnx"), "-o", out3, scenes[0], check=False)
        assert p.returncode == 1 and "missing.onnx" in p.stderr, p.stderr
        p = L.classify("--help")
        assert "Exit status" in p.stdout and "--scale-range" in p.stdout
        print("usage errors: exit 2 (%d cases)" % len(bad_usage))


ct.main(run)
