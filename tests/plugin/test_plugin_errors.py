"""QGIS plugin, failures: what canopy refuses (a truncated scene, a corrupt
model) becomes a QgsProcessingException whose message is canopy's own stderr
message; malformed parameters and parameters that do not fit the model (a
label it lacks, the wrong number of bands) or the scene (a band it lacks) are
refused by checkParameterValues before canopy runs, naming the parameter and
the model's labels; a layer GDAL cannot read, a canopy executable that does
not exist: clear exceptions. No failure leaves an output.
"""
import json
import os
import shlex
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import canopytest as ct  # noqa: E402
import qgistest as Q  # noqa: E402

Q.start()
import processing  # noqa: E402
from processing.core.ProcessingConfig import ProcessingConfig  # noqa: E402
from qgis.core import (QgsApplication, QgsProcessingContext,  # noqa: E402
                       QgsProcessingException, QgsRasterLayer)


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

        fb = Q.feedback()
        msg = refused(dict(base, INPUT=bad), fb)
        said = canopy_says(fb)
        # (the scene_error event's message: stderr's line without "canopy classify: ")
        assert said == "canopy classify: " + msg and "truncated.tif" in msg, (msg, said)
        assert msg in fb.errors, fb.errors
        assert Q.files(out) == [], Q.files(out)
        print("truncated scene: %s" % msg)

        # A model canopy cannot load: canopy's own message (canopy info's).
        fb = Q.feedback()
        msg = refused(dict(base, INPUT=scene, MODEL=model), fb)
        info = ct.canopy("info", "-m", model, check=False)
        assert info.returncode == 1, info
        said = [x for x in info.stderr.splitlines() if x.startswith("canopy ")]
        assert said and said[0] in msg and "broken.onnx" in msg, (msg, said)
        assert fb.commands == [] and Q.files(out) == [], (fb.commands, Q.files(out))
        print("corrupt model: %s" % msg)

        # What the plugin checks before running anything: the text parameters'
        # form and the parameters against the model's labels and channels and
        # the scene's bands. The message names the parameter and, for labels,
        # lists the model's.
        labels = ct.canopy("info", "--json").stdout
        labels = json.loads(labels)["metadata"]["labels"]
        listing = ", ".join(labels)
        for what, params, needles in (
                ("unknown threshold label", dict(THRESHOLDS=["nolabel", 0.3]),
                 ["Thresholds", "nolabel", listing]),
                ("threshold out of range", dict(THRESHOLDS=["road", 1.5]),
                 ["Thresholds", "road", "between 0 and 1"]),
                ("threshold row half filled", dict(THRESHOLDS=["road"]),
                 ["Thresholds", "label and a threshold"]),
                ("unknown marker label", dict(MARKERS="road, roads"),
                 ["Marker labels", "roads", listing]),
                ("bands not numbers", dict(BANDS="3,two,1"), ["Bands", "3,two,1"]),
                ("band 0", dict(BANDS="0,1,2"), ["Bands", "from 1"]),
                ("bands for another model", dict(BANDS="1,2"), ["Bands", "3 channels", "2"]),
                ("band beyond the scene", dict(BANDS="4,2,1"), ["Bands", "1 to 3", "band 4"]),
                ("scale range reversed", dict(SCALE_RANGE="3000,0"), ["Scale range", "MIN < MAX"]),
                ("scale range one value", dict(SCALE_RANGE="3000"), ["Scale range"]),
                ("creation option without value", dict(CREATION_OPTIONS="COMPRESS"),
                 ["Creation options", "COMPRESS", "NAME=VALUE"]),
                ("GSD twice", dict(GSD=3.0, NATIVE_GSD=True),
                 ["Ground sampling distance", "not both"])):
            fb = Q.feedback()
            msg = refused(dict(base, INPUT=scene, **params), fb)
            assert all(n in msg for n in needles), (what, msg)
            assert fb.commands == [], (what, fb.commands)
            alg = QgsApplication.processingRegistry().algorithmById("canopy:classifyscene")
            ok, said = alg.checkParameterValues(dict(base, INPUT=scene, **params),
                                                QgsProcessingContext())
            assert not ok and said in msg, (what, said, msg)
            print("%s: %s" % (what, said))
        assert Q.files(out) == [], Q.files(out)

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
