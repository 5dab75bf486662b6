"""Arguments that were misread (issue 13, item 13):
- an @list file saved with a UTF-8 byte order mark (Windows editors) failed
  on its first entry; the mark is now ignored, for classify's scene lists
  and predict's chip lists alike;
- a scene named "-dash.tif" as the last argument was reported as an option
  that "expects a value"; it is now an unknown option whose message says how
  to give such a file (./-dash.tif, or after --), and both ways work;
- an unknown option is named as unknown, whatever its place.
"""
import json
import os
import shutil

import numpy as np
from osgeo import gdal

import canopytest as ct
import scenes as S

gdal.UseExceptions()
GT = [500000.0, 3.0, 0.0, 8900000.0, 0.0, -3.0]
BOM = b"\xef\xbb\xbf"


def scene(path, seed):
    rng = np.random.default_rng(seed)
    S.make_scene(path, rng.integers(0, 256, (3, 64, 64), dtype=np.uint8), GT, 32720)


def test():
    m = os.environ["CANOPY_MODEL"]
    with ct.tmpdir() as d:
        a, b = os.path.join(d, "a.tif"), os.path.join(d, "b.tif")
        scene(a, 1)
        scene(b, 2)

        # A scene list with a byte order mark, CRLF line ends and a comment.
        lst = os.path.join(d, "scenes.txt")
        with open(lst, "wb") as f:
            f.write(BOM + ("%s\r\n# a comment\r\n%s\r\n" % (a, b)).encode())
        out = os.path.join(d, "out")
        r = ct.canopy("classify", "-m", m, "--chip", 32, "--progress=jsonl", "-o", out, "@" + lst)
        done = [json.loads(x) for x in r.stdout.splitlines() if '"scene_done"' in x]
        assert [e["name"] for e in done] == ["a", "b"], done
        print("@list with a BOM: %d scenes" % len(done))

        # predict's chip list, the same.
        clst = os.path.join(d, "chips.txt")
        with open(clst, "wb") as f:
            f.write(BOM + ("%s\n%s\n" % (a, b)).encode())
        r = ct.canopy("predict", "-m", m, "@" + clst)
        rows = [x for x in r.stdout.splitlines() if x and not x.startswith("image")]
        assert len(rows) == 2 and rows[0].startswith("a"), r.stdout

        # A scene named -dash.tif, last.
        os.chdir(d)
        shutil.copy(a, "-dash.tif")
        r = ct.canopy("classify", "-m", m, "--chip", 32, "-o", "o2", "b.tif", "-dash.tif",
                      check=False)
        assert r.returncode == 2, (r.returncode, r.stderr)
        assert "unknown option '-dash.tif'" in r.stderr and "./-dash.tif" in r.stderr \
            and "--" in r.stderr, r.stderr
        assert "expects a value" not in r.stderr, r.stderr
        print("-dash.tif:", r.stderr.strip())
        for way in (["./-dash.tif"], ["--", "-dash.tif"]):
            o = "o-" + str(len(way))
            ct.canopy("classify", "-q", "-m", m, "--chip", 32, "-o", o, *way)
            assert os.path.isfile(os.path.join(o, "-dash.manifest.json")), os.listdir(o)

        r = ct.canopy("classify", "-m", m, "--bogus", "-o", "o3", "b.tif", check=False)
        assert r.returncode == 2 and "unknown option '--bogus'" in r.stderr, r.stderr
        assert not os.path.exists("o3")


ct.main(test)
