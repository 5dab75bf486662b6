"""QGIS plugin, the graphical modeler and batch mode, which can only use
typed parameters: each algorithm is added to a QgsProcessingModelAlgorithm
built in code (a model input feeding the scene, static values for a
threshold table, enums, the output folder), the model validates and runs
with processing.run, and canopy did what the model said (manifest, GDAL);
Monitor area runs in a model too (alert state made, counts as outputs)
when canopy can monitor. Batch: processing's batch dialog with two rows (two
scenes, their own output folders and thresholds) runs both.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import canopytest as ct  # noqa: E402
import qgistest as Q  # noqa: E402

Q.start()
import processing  # noqa: E402
from osgeo import gdal  # noqa: E402
from qgis.core import (QgsApplication, QgsProcessingContext,  # noqa: E402
                       QgsProcessingModelAlgorithm, QgsProcessingModelChildAlgorithm,
                       QgsProcessingModelChildParameterSource, QgsProcessingModelOutput,
                       QgsProcessingModelParameter, QgsProcessingParameterFile,
                       QgsProcessingParameterRasterLayer)

Static = QgsProcessingModelChildParameterSource.fromStaticValue


def model_with(alg_id, input_param, statics, outputs, folder=False):
    """A model whose one input ("scene") feeds alg_id's input_param, with
    static values for the rest and the child's outputs as model outputs."""
    m = QgsProcessingModelAlgorithm("canopy in a model", "tests")
    if folder:
        definition = QgsProcessingParameterFile("scene", "Scene",
                                                behavior=QgsProcessingParameterFile.Folder)
    else:
        definition = QgsProcessingParameterRasterLayer("scene", "Scene")
    m.addModelParameter(definition, QgsProcessingModelParameter("scene"))
    child = QgsProcessingModelChildAlgorithm(alg_id)
    child.setChildId("canopy")
    child.addParameterSources(input_param,
                              [QgsProcessingModelChildParameterSource.fromModelParameter("scene")])
    # As the modeler's dialog does: every parameter starts at its default.
    alg = QgsApplication.processingRegistry().algorithmById(alg_id)
    defaults = {d.name(): d.defaultValue() for d in alg.parameterDefinitions()
                if d.defaultValue() is not None and not d.isDestination()}
    for name, value in dict(defaults, **statics).items():
        if name != input_param:
            child.addParameterSources(name, [Static(value)])
    model_outputs = {}
    for name in outputs:
        out = QgsProcessingModelOutput(name.lower(), name)
        out.setChildOutputName(name)
        out.setChildId("canopy")
        model_outputs[name.lower()] = out
    child.setModelOutputs(model_outputs)
    m.addChildAlgorithm(child)
    ok, issues = m.validateChildAlgorithm("canopy")
    assert ok, (alg_id, issues)
    ok, issues = m.validate()
    assert ok, (alg_id, issues)
    return m


def can_monitor():
    return "--alerts" in ct.canopy("classify", "--help").stdout


def check_models(d, scenes):
    out = os.path.join(d, "model-scene")
    m = model_with("canopy:classifyscene", "INPUT",
                   {"CHIP": 64, "THRESHOLDS": ["road", "0.6"], "PROBS_TYPE": 1, "FORMAT": 1,
                    "OUTPUT_FOLDER": out, "LOAD_OUTPUTS": False}, ["PROBS", "MANIFEST"])
    res = processing.run(m, {"scene": scenes[0]}, feedback=Q.feedback())
    probs = res["canopy:probs"]
    assert probs == os.path.join(out, "scene_0.probs.tif"), res
    with open(res["canopy:manifest"]) as f:
        p = json.load(f)["parameters"]
    assert abs(p["thresholds"]["road"] - 0.6) < 1e-6 and p["probs_type"] == "Float32", p
    ds = gdal.Open(probs)
    assert ds.GetMetadataItem("LAYOUT", "IMAGE_STRUCTURE") == "COG", ds.GetMetadata(
        "IMAGE_STRUCTURE")
    print("model with Classify scene: ran; threshold, Float32 and COG reached canopy")

    inbox = os.path.dirname(scenes[0])
    out = os.path.join(d, "model-folder")
    m = model_with("canopy:classifyfolder", "INPUT",
                   {"CHIP": 64, "MARKERS": "road", "OUTPUT_FOLDER": out, "LOAD_OUTPUTS": False},
                   ["CLASSIFIED", "PROBS"], folder=True)
    res = processing.run(m, {"scene": inbox}, feedback=Q.feedback())
    assert res["canopy:classified"] == len(scenes), res
    assert sorted(os.path.basename(x) for x in res["canopy:probs"]) == [
        "scene_%d.probs.tif" % i for i in range(len(scenes))], res
    print("model with Classify folder: ran; %d scenes" % res["canopy:classified"])

    alerts = os.path.join(d, "alert-state")
    m = model_with("canopy:monitorarea", "FOLDER",
                   {"CHIP": 64, "ALERTS": alerts, "OUTPUT_FOLDER": os.path.join(d, "model-mon"),
                    "LOAD_OUTPUTS": False}, ["NEW", "CONFIRMED", "DISMISSED", "ALERTS_RASTER"],
                   folder=True)
    if not can_monitor():
        print("model with Monitor area: validated; NOT RUN: this canopy has no classify "
              "--alerts (the monitoring branch is not in this build)")
        return
    res = processing.run(m, {"scene": inbox}, feedback=Q.feedback())
    assert os.path.isfile(os.path.join(alerts, "alerts.tif")), os.listdir(alerts)
    assert res["canopy:alerts_raster"] == os.path.join(alerts, "alerts.tif"), res
    assert all(isinstance(res["canopy:" + k], (int, float)) for k in ("new", "confirmed",
                                                                        "dismissed")), res
    print("model with Monitor area: ran; %s new" % res["canopy:new"])


def check_batch(d, scenes):
    """processing's batch dialog: two rows, then Run."""
    from processing.gui.BatchAlgorithmDialog import BatchAlgorithmDialog
    from qgis.PyQt.QtWidgets import QApplication, QMainWindow
    alg = QgsApplication.processingRegistry().algorithmById("canopy:classifyscene")
    win = QMainWindow()
    dlg = BatchAlgorithmDialog(alg.create(), parent=win)
    dlg.resize(900, 700)
    dlg.show()
    panel = dlg.mainWidget()
    while panel.batchRowCount() < 2:
        panel.addRow()
    context = QgsProcessingContext()
    outs = [os.path.join(d, "batch-%d" % i) for i in range(2)]
    for row, (scene, out, threshold) in enumerate(zip(scenes, outs, ("0.3", "0.7"))):
        for name, value in (("INPUT", scene), ("CHIP", 64), ("THRESHOLDS", ["road", threshold]),
                            ("LOAD_OUTPUTS", False)):
            panel.wrappers[row][panel.parameter_to_column[name]].setParameterValue(value,
                                                                                   context)
        panel.tblParameters.cellWidget(row + 1, panel.parameter_to_column["OUTPUT_FOLDER"]) \
            .setValue(out)
    QApplication.processEvents()
    dlg.runAlgorithm()
    for scene, out, threshold in zip(scenes, outs, (0.3, 0.7)):
        name = os.path.splitext(os.path.basename(scene))[0]
        with open(os.path.join(out, name + ".manifest.json")) as f:
            m = json.load(f)
        assert abs(m["parameters"]["thresholds"]["road"] - threshold) < 1e-6, m["parameters"]
        assert os.path.isfile(os.path.join(out, name + ".probs.tif"))
    print("batch dialog: 2 rows run, each with its own scene, threshold and output folder")
    dlg.close()


def run():
    with ct.tmpdir() as d:
        inbox = os.path.join(d, "inbox")
        os.makedirs(inbox)
        scenes = Q.make_scenes(inbox, [(192, 192), (128, 192)], seed=31)
        check_models(d, scenes)
        check_batch(d, scenes)


Q.main(run)
