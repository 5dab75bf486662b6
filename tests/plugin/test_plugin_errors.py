"""QGIS plugin, failures: what canopy refuses (a truncated scene, a threshold
for a label the model lacks, a corrupt model) becomes a QgsProcessingException
whose message is canopy's own stderr message for the same command; options
the plugin owns are refused in "Other options"; a layer GDAL cannot read, a
canopy executable that does not exist: clear exceptions. No failure leaves
an output.
"""
import os
import shlex
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import canopytest as ct  # noqa: E402
import qgistest as Q  # noqa: E402

Q.start()
import processing  # noqa: E402
from processing.core.ProcessingConfig import ProcessingConfig  # noqa: E402
from qgis.core import QgsProcessingException, QgsRasterLayer  # noqa: E402


def refused(params, feedback=None):
    """Runs Classify scene, which must fail; returns the exception's text."""
    try:
        processing.run("canopy:classifyscene", params, feedback=feedback or Q.feedback())
    except QgsProcessingException as e:
        return str(e)
    raise AssertionError("no exception for %s" % params)


def canopy_says(feedback):
    """canopy's own stderr lines for the command the plugin ran."""
    p = ct.run(shlex.split(feedback.commands[-1]), check=False)
    assert p.returncode in (1, 2), (p.returncode, p.stderr)
    return "\n".join(x for x in p.stderr.splitlines() if x.startswith("canopy "))


def run():
    with ct.tmpdir() as d:
        scene = Q.make_scenes(d, [(128, 128)])[0]
        bad = os.path.join(d, "truncated.tif")
        Q.truncated_tiff(bad)
        model = os.path.join(d, "broken.onnx")
        with open(model, "wb") as f:
            f.write(b"\x08\x07\x12\x04not an ONNX graph")
        out = os.path.join(d, "out")
        base = {"CHIP": 64, "OUTPUT_FOLDER": out}

        cases = [("truncated scene", dict(base, INPUT=bad), "truncated.tif"),
                 ("unknown label", dict(base, INPUT=scene, THRESHOLDS="nolabel=0.3"),
                  "the model has no label 'nolabel'"),
                 ("corrupt model", dict(base, INPUT=scene, MODEL=model), "broken.onnx")]
        for what, params, needle in cases:
            fb = Q.feedback()
            msg = refused(params, fb)
            said = canopy_says(fb)
            assert msg == said and needle in msg, (what, msg, said)
            assert said in "\n".join(fb.errors), (what, fb.errors)
            assert Q.files(out) == [], Q.files(out)
            print("%s: %s" % (what, msg))

        for extra, needle in (("-o %s" % d, "Output folder"), ("--quiet", "progress"),
                              ("--output=%s" % d, "Output folder"), ("'unclosed", "quotation")):
            msg = refused(dict(base, INPUT=scene, EXTRA_ARGS=extra))
            assert "Other canopy classify options" in msg and needle in msg, (extra, msg)
        print("Other options: refuses -o, --quiet, unbalanced quotes")

        xyz = QgsRasterLayer("type=xyz&url=file://%s/%%7Bz%%7D/%%7Bx%%7D/%%7By%%7D.png&zmax=19"
                             "&zmin=0" % d, "tiles", "wms")
        assert xyz.isValid()
        msg = refused(dict(base, INPUT=xyz))
        assert "tiles" in msg and "wms" in msg and "GeoTIFF" in msg, msg

        # Where canopy is looked for: a setting or a variable that names
        # nothing is an error of its own, not a reason to run another canopy.
        saved = os.environ["CANOPY"]
        os.environ["CANOPY"] = os.path.join(d, "no-such-canopy")
        msg = refused(dict(base, INPUT=scene))
        assert "CANOPY environment variable" in msg and "no-such-canopy" in msg, msg
        os.environ["CANOPY"] = saved
        not_exe = os.path.join(d, "canopy-not-executable")
        with open(not_exe, "w") as f:
            f.write("#!/bin/sh\n")
        ProcessingConfig.setSettingValue("CANOPY_EXECUTABLE", not_exe)
        msg = refused(dict(base, INPUT=scene))
        assert "canopy executable setting" in msg and not_exe in msg, msg
        ProcessingConfig.setSettingValue("CANOPY_EXECUTABLE", "")
        assert Q.files(out) == [], Q.files(out)
        print("missing canopy:", msg)


Q.main(run)
