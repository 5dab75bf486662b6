"""QGIS plugin, cancel: cancelling "Classify scene" while canopy classifies
stops the child process within seconds and leaves nothing in the output
folder, not even hidden temporary files, and the algorithm fails with
canopy's account of it; cancelling "Classify folder" during its last scene
keeps the scenes already finished (complete) and leaves nothing of the
last one.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import canopytest as ct  # noqa: E402
import qgistest as Q  # noqa: E402

Q.start()
import processing  # noqa: E402
from osgeo import gdal  # noqa: E402
from qgis.core import QgsProcessingException  # noqa: E402


def canopy_pids(out):
    """Processes whose command line has `-o out` (the plugin's canopy)."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if b"-o" in args and out.encode() in args:
            pids.append(int(pid))
    return pids


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def cancel_when(feedback, out, percent):
    """Cancels once progress passes percent; records canopy's pid and when."""
    feedback.cancelled_at, feedback.pids = None, []

    def check(value):
        if feedback.cancelled_at is None and percent < value < 100:
            feedback.pids = canopy_pids(out)
            feedback.cancelled_at = (time.monotonic(), value)
            feedback.cancel()
    feedback.progressChanged.connect(check)


def cancelled_run(alg, params, percent):
    out = params["OUTPUT_FOLDER"]
    fb = Q.feedback()
    cancel_when(fb, out, percent)
    try:
        processing.run(alg, params, feedback=fb)
    except QgsProcessingException as e:
        msg = str(e)
    else:
        raise AssertionError("a cancelled run returned")
    assert fb.cancelled_at, "never cancelled: %s" % fb.progress
    stopped = time.monotonic() - fb.cancelled_at[0]
    assert len(fb.pids) == 1, fb.pids
    assert not alive(fb.pids[0]), "canopy %d still runs" % fb.pids[0]
    assert stopped < 20, stopped
    assert msg.startswith("Cancelled: ") and "interrupted" in msg, msg
    return msg, stopped, fb.cancelled_at[1]


def run():
    with ct.tmpdir() as d:
        # 1200 x 1200 at chip 32, stride 16: 5625 chips, tens of seconds.
        big = Q.make_scenes(d, [(1200, 1200)], seed=8)[0]
        out = os.path.join(d, "out")
        params = {"INPUT": big, "CHIP": 32, "STRIDE": 16, "THREADS": 1, "OUTPUT_FOLDER": out}
        msg, stopped, at = cancelled_run("canopy:classifyscene", params, 0)
        assert Q.files(out) == [], Q.files(out)
        print("scene cancelled at %.1f %%, canopy gone %.2f s later, nothing left: %s"
              % (at, stopped, msg.splitlines()[0]))

        # A folder: two small scenes, then a big one (names sort in this order).
        inbox = os.path.join(d, "inbox")
        os.makedirs(inbox)
        small = Q.make_scenes(inbox, [(128, 128), (160, 128)], seed=3)
        os.rename(big, os.path.join(inbox, "scene_2.tif"))
        out = os.path.join(d, "batch")
        params = {"INPUT": inbox, "CHIP": 32, "STRIDE": 16, "THREADS": 1, "OUTPUT_FOLDER": out}
        msg, stopped, at = cancelled_run("canopy:classifyfolder", params, 100.0 * 2 / 3)
        assert "the 2 scenes finished before are complete" in msg, msg
        left = Q.files(out)
        assert not [f for f in left if f.startswith("scene_2") or f.startswith(".")], left
        for p in small:
            name = os.path.splitext(os.path.basename(p))[0]
            for suffix in (".probs.tif", ".masks.tif", ".markers.geojson", ".manifest.json"):
                assert name + suffix in left, (name + suffix, left)
            ds = gdal.Open(os.path.join(out, name + ".probs.tif"))
            assert ds.RasterCount == 17 and ds.GetRasterBand(1).Checksum() >= 0
        print("folder cancelled in its last scene at %.1f %%: %d files of the 2 finished scenes "
              "kept, none of the third" % (at, len(left)))


Q.main(run)
