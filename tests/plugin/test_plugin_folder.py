"""QGIS plugin, "Classify folder": a folder with two scenes, a truncated TIFF
and a text file. The batch goes on past the broken scene, as canopy does:
the algorithm succeeds, counts 2 classified and 1 failed, returns the
outputs of the two (which exist and open as valid, styled layers), reports
canopy's message for the broken one (the same as canopy's own for the
folder) and leaves nothing of it; progress climbs through the scenes. A
second run finds both up to date and rewrites nothing. A folder where
nothing can be classified, or an empty one, is an exception with canopy's
message.
"""
import os
import shlex
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import canopytest as ct  # noqa: E402
import qgistest as Q  # noqa: E402

Q.start()
import processing  # noqa: E402
from qgis.core import (QgsCategorizedSymbolRenderer, QgsPalettedRasterRenderer,  # noqa: E402
                       QgsProcessingException, QgsProject, QgsSingleBandPseudoColorRenderer)


def canopy_messages(cmd):
    p = ct.run(shlex.split(cmd), check=False)
    return [x for x in p.stderr.splitlines() if x.startswith("canopy ")]


def refused(folder, out):
    try:
        processing.run("canopy:classifyfolder", {"INPUT": folder, "CHIP": 64,
                                                 "OUTPUT_FOLDER": out})
    except QgsProcessingException as e:
        return str(e)
    raise AssertionError("no exception for %s" % folder)


def run():
    with ct.tmpdir() as d:
        inbox = os.path.join(d, "inbox")
        os.makedirs(inbox)
        Q.make_scenes(inbox, [(320, 256), (480, 384)], seed=11)
        Q.truncated_tiff(os.path.join(inbox, "broken.tif"))   # sorts first: [1/3]
        with open(os.path.join(inbox, "notes.txt"), "w") as f:
            f.write("not a scene\n")
        out = os.path.join(d, "out")
        params = {"INPUT": inbox, "CHIP": 32, "THREADS": 1, "OUTPUT_FOLDER": out}
        fb = Q.feedback()
        res = processing.runAndLoadResults("canopy:classifyfolder", dict(params), feedback=fb)

        bases = [os.path.join(out, "scene_%d" % i) for i in range(2)]
        assert (res["CLASSIFIED"], res["UP_TO_DATE"], res["FAILED"]) == (2, 0, 1), res
        assert res["PROBS"] == [b + ".probs.tif" for b in bases], res["PROBS"]
        assert res["MASKS"] == [b + ".masks.tif" for b in bases], res["MASKS"]
        assert res["MARKERS_OUTPUT"] == [b + ".markers.geojson" for b in bases], res
        for path in res["PROBS"] + res["MASKS"] + res["MARKERS_OUTPUT"]:
            assert os.path.isfile(path), path
        assert not [f for f in Q.files(out) if "broken" in f or f.startswith(".")], Q.files(out)
        said = canopy_messages(fb.commands[-1])
        assert said[0].startswith("canopy classify: %s: " % os.path.join(inbox, "broken.tif"))
        # canopy's scene_error message: the stderr line without "canopy classify: "
        event_message = said[0][len("canopy classify: "):]
        assert res["ERRORS"] == event_message, (res["ERRORS"], said)
        assert event_message in fb.errors, fb.errors
        assert any("1 of the scenes" in e for e in fb.errors), fb.errors
        run_part = fb.progress[:fb.progress.index(100.0) + 1]
        assert run_part == sorted(run_part), run_part
        # The last scene's 12 rows of chips take about a second: some of its
        # ticks arrive on their own (exact parsing: test_plugin_output.py).
        assert any(200 / 3 < v < 100 for v in run_part), run_part
        print("folder: 2 classified, 1 failed:", said[0][:90])

        layers = {layer.name(): layer for layer in QgsProject.instance().mapLayers().values()}
        renderers = {"probabilities": QgsSingleBandPseudoColorRenderer,
                     "masks": QgsPalettedRasterRenderer, "markers": QgsCategorizedSymbolRenderer}
        assert len(layers) == 6, sorted(layers)
        for i in range(2):
            for kind, renderer in renderers.items():
                layer = layers["scene_%d %s" % (i, kind)]
                assert layer.isValid() and isinstance(layer.renderer(), renderer), (
                    layer.name(), type(layer.renderer()))

        stamp = {f: os.stat(os.path.join(out, f)).st_mtime_ns for f in Q.files(out)}
        res = processing.run("canopy:classifyfolder", dict(params, LOAD_OUTPUTS=False))
        assert (res["CLASSIFIED"], res["UP_TO_DATE"], res["FAILED"]) == (0, 2, 1), res
        assert res["PROBS"] == [b + ".probs.tif" for b in bases], res["PROBS"]
        assert {f: os.stat(os.path.join(out, f)).st_mtime_ns for f in Q.files(out)} == stamp
        print("second run: 2 up to date, nothing rewritten")

        only_bad = os.path.join(d, "only-bad")
        os.makedirs(only_bad)
        Q.truncated_tiff(os.path.join(only_bad, "broken.tif"))
        msg = refused(only_bad, os.path.join(d, "out2"))
        assert msg.startswith("%s: " % os.path.join(only_bad, "broken.tif")), msg
        assert Q.files(os.path.join(d, "out2")) == []
        empty = os.path.join(d, "empty")
        os.makedirs(empty)
        msg = refused(empty, os.path.join(d, "out3"))
        assert "holds no raster" in msg and empty in msg, msg
        print("nothing classified:", msg)


Q.main(run)
