"""canopy classify --progress: GDAL's 0...10...100 progress on stdout when it
is a pipe (what the QGIS plugin reads), "[i/n] " before each scene's line in
a batch, none for a scene that fails before its chips are read, a line cut
short (and the next scene's line whole, from 0) for a scene that fails part
way, none without the option or with -q, and a usage error when given a
value.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scene"))
import canopytest as ct  # noqa: E402
import test_classify_lib as L  # noqa: E402

GT = [400020.0, 3.0, 0.0, 8950020.0, 0.0, -3.0]
TICKS = "0...10...20...30...40...50...60...70...80...90...100 - done."


def run():
    with ct.tmpdir() as d:
        tiny = L.Tiny(os.path.join(d, "tiny.onnx"), seed=3, input_size=32)
        scenes = []
        for i, (w, h) in enumerate(((256, 200), (160, 320))):
            p = os.path.join(d, "s%d.tif" % i)
            L.make_scene(p, L.texture(60 + i, 3, h, w), GT, 32720)
            scenes.append(p)
        bad = os.path.join(d, "bad.tif")
        with open(bad, "wb") as f:
            f.write(b"II*\x00 not a TIFF past its header")
        # Opens, then fails after some rows of chips: its pixels are cut off.
        cut = os.path.join(d, "cut.tif")
        L.make_scene(cut, L.texture(70, 3, 384, 384), GT, 32720)
        with open(cut, "r+b") as f:
            f.truncate(os.path.getsize(cut) // 2)
        common = ["-m", tiny.path, "--chip", "32", "--threads", "1"]

        # One scene: its path, then the ticks; no [i/n].
        out = os.path.join(d, "one")
        p = L.classify("--progress", *common, "-o", out, scenes[0])
        lines = p.stdout.splitlines()
        assert lines[0] == "%s: %s" % (scenes[0], TICKS), p.stdout
        assert lines[1].startswith(scenes[0] + ": ") and " chips " in lines[1], p.stdout
        assert len(lines) == 2, p.stdout

        # A batch with a scene that cannot be opened, then one that fails
        # part way.
        out = os.path.join(d, "batch")
        p = L.classify("--progress", *common, "-o", out, scenes[0], bad, cut, scenes[1],
                       check=False)
        assert p.returncode == 1 and "bad.tif" in p.stderr and "cut.tif" in p.stderr, p.stderr
        ticks = [x for x in p.stdout.splitlines() if x.startswith("[")]
        assert ticks[0] == "[1/4] %s: %s" % (scenes[0], TICKS), p.stdout
        assert ticks[1].startswith("[3/4] %s: 0..." % cut) and "done" not in ticks[1], p.stdout
        assert TICKS.startswith(ticks[1].split(": ", 1)[1]), ticks[1]
        assert ticks[2:] == ["[4/4] %s: %s" % (scenes[1], TICKS)], p.stdout
        assert "0..." not in p.stderr, p.stderr

        # Without the option (stdout is a pipe here) and with -q: no ticks.
        p = L.classify(*common, "-o", os.path.join(d, "plain"), scenes[0])
        assert "0..." not in p.stdout and p.stdout.count("\n") == 1, p.stdout
        p = L.classify("--progress", "-q", *common, "-o", os.path.join(d, "quiet"), scenes[0])
        assert p.stdout == "" and p.stderr == "", (p.stdout, p.stderr)

        p = L.classify("--progress=yes", *common, "-o", out, scenes[0], check=False)
        assert p.returncode == 2 and "--progress takes no value" in p.stderr, p.stderr
        help_text = L.classify("--help").stdout
        assert "--progress" in help_text and "[2/5] PATH: 0...10...100 - done." in help_text
        print("--progress: ticks on a pipe, [i/n] in a batch, silent with -q")


ct.main(run)
