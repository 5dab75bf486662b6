"""QGIS plugin, the dialogs as a QGIS user sees them: each algorithm's
AlgorithmDialog (on a QMainWindow, Qt's offscreen platform) at 900 x 700,
with the advanced parameters folded and unfolded, drawn to PNG
(tests/plugin/dialog-ALG[-advanced].png in the build folder); the parameters
panel needs no sideways scrolling and every browse button lies inside it;
labels are short (as GDAL's algorithms have them) and each parameter's
explanation is its tooltip and in the help panel, whose paragraphs are whole
(no line break inside a sentence); the help has a helpUrl. The marker
labels' "..." button offers the chosen model's labels (as canopy info --json
lists them) with its marker labels ticked.
"""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import canopytest as ct  # noqa: E402
import qgistest as Q  # noqa: E402

Q.start()
from qgis.core import QgsApplication, QgsProcessingContext  # noqa: E402
from qgis.PyQt.QtWidgets import QLabel  # noqa: E402

ALGORITHMS = ("canopy:classifyscene", "canopy:classifyfolder", "canopy:monitorarea")
MAX_LABEL = 32   # characters; GDAL's "Additional creation options" has 27


def check_help(alg):
    text = alg.shortHelpString()
    assert "\n" not in text, "a line break inside the help of %s" % alg.id()
    for part in re.findall(r"<(?:p|dd)>(.*?)</(?:p|dd)>", text):
        assert part.rstrip()[-1:] in ".)", (alg.id(), part)
    assert alg.helpUrl().startswith("https://"), alg.helpUrl()
    for p in alg.parameterDefinitions():
        assert len(p.description()) <= MAX_LABEL, (alg.id(), p.description())
        assert p.help() and "\n" not in p.help(), (alg.id(), p.name())
        assert "<dt><b>%s</b></dt><dd>%s</dd>" % (p.description(), p.help()) in text, p.name()


def check_panel(alg_id, dlg, advanced):
    """No sideways scrolling; every browse button inside the visible panel;
    each parameter's label carries its explanation as tooltip."""
    panel = Q.parameters_panel(dlg)
    bar = panel.horizontalScrollBar()
    assert bar.maximum() == 0 and not bar.isVisible(), (alg_id, bar.maximum())
    view = panel.viewport()
    buttons = Q.browse_buttons(panel)
    assert buttons, alg_id
    for b in buttons:
        left = b.mapTo(view, b.rect().topLeft()).x()
        right = b.mapTo(view, b.rect().bottomRight()).x()
        assert 0 <= left and right < view.width(), (alg_id, left, right, view.width())
    alg = dlg.algorithm()
    labels = {w.text(): w for w in panel.widget().findChildren(QLabel) if w.isVisible()}
    threads = [t for t in labels if t.startswith("Threads")]
    assert bool(threads) == advanced, (alg_id, advanced, sorted(labels))
    for p in alg.parameterDefinitions():
        label = [w for t, w in labels.items() if t.startswith(p.description())]
        if label:   # (check boxes carry their description themselves)
            assert p.help() in label[0].toolTip(), (alg_id, p.name(), label[0].toolTip())
    return len(buttons), view.width()


def check_marker_chooser(dlg, model):
    """The marker labels' "..." lists the chosen model's labels (canopy info
    --json), the model's markers ticked; what is ticked becomes the text."""
    import canopy.widgets as W
    wrapper = dlg.mainWidget().wrappers["MARKERS"]
    dlg.mainWidget().wrappers["MODEL"].setParameterValue(model, QgsProcessingContext())
    info = json.loads(ct.canopy("info", "--json", "-m", model).stdout)["metadata"]
    seen = {}

    class Chooser:   # stands in for the modal dialog: ticks the first two labels
        def __init__(self, available, selected, parent):
            seen.update(available=available, selected=selected)

        def setWindowTitle(self, title):
            pass

        def exec_(self):
            return True

        def selectedOptions(self):
            return seen["available"][:2]

    real, W.QgsProcessingMultipleSelectionDialog = W.QgsProcessingMultipleSelectionDialog, Chooser
    try:
        wrapper.button.click()
    finally:
        W.QgsProcessingMultipleSelectionDialog = real
    assert seen["available"] == info["labels"], seen
    assert seen["selected"] == info["markers"], seen
    assert wrapper.value() == ", ".join(info["labels"][:2]), wrapper.value()
    print("marker labels: the model's %d labels offered, its %d markers ticked"
          % (len(info["labels"]), len(info["markers"])))


def run():
    outdir = os.path.join(ct.BUILDDIR, "tests", "plugin")
    os.makedirs(outdir, exist_ok=True)
    registry = QgsApplication.processingRegistry()
    for alg_id in ALGORITHMS:
        alg = registry.algorithmById(alg_id)
        assert alg is not None, alg_id
        check_help(alg)
        for advanced in (False, True):
            win, dlg = Q.dialog(alg_id, 900, 700, advanced)
            assert dlg.width() == 900, dlg.width()
            n, width = check_panel(alg_id, dlg, advanced)
            if not advanced and alg_id == "canopy:classifyscene":
                check_marker_chooser(dlg, os.environ["CANOPY_MODEL"])
            png = os.path.join(outdir, "dialog-%s%s.png" % (alg_id.split(":")[1],
                                                              "-advanced" if advanced else ""))
            Q.save_png(dlg, png)
            print("%s%s: %d browse buttons inside the %d px panel, no sideways scroll; %s"
                  % (alg_id, " (advanced)" if advanced else "", n, width, png))
            dlg.close()


Q.main(run)
