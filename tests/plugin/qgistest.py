"""Real QGIS, headless, for the plugin tests (not a test): QgsApplication
without GUI on Qt's offscreen platform, Processing initialised, canopy's
plugin loaded from the source tree; QGIS's settings, profile and runtime
folders in a temporary folder, so a test never touches the user's QGIS.
Also: small scenes for it to classify, and a feedback that records."""
import os
import shutil
import sys
import tempfile

import canopytest as ct

PLUGIN_DIR = os.path.join(ct.SRCDIR, "plugin")
sys.path.insert(0, os.path.join(ct.SRCDIR, "tests", "scene"))   # test_classify_lib
_home = None   # QGIS's folders, removed at exit
GT = [400020.0, 3.0, 0.0, 8950020.0, 0.0, -3.0]   # UTM 20S, 3 m pixels
EPSG = 32720


def start(load_plugin=True):
    """Starts QGIS and Processing and (load_plugin) registers canopy's
    provider from the source tree. Exits 77 when this Python has no QGIS."""
    try:
        from qgis.core import QgsApplication
    except ImportError as e:
        print("SKIP: the plugin tests need QGIS's Python bindings (Debian: python3-qgis): %s"
              % e)
        sys.exit(ct.SKIP)
    # Read by Qt when the application starts, not at import.
    global _home, _app
    home = _home = tempfile.mkdtemp(prefix="canopy-qgis-")
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    for var in ("XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
        path = os.path.join(home, var.lower())
        os.makedirs(path, mode=0o700)
        os.environ[var] = path
    _app = QgsApplication([], False, os.path.join(home, "profile"))
    _app.initQgis()
    sys.path.append(os.path.join(QgsApplication.pkgDataPath(), "python", "plugins"))
    from processing.core.Processing import Processing
    Processing.initialize()
    if not load_plugin:
        return None
    sys.path.insert(0, PLUGIN_DIR)
    import canopy
    global _plugin   # QGIS holds the plugin (and its provider) for its lifetime
    _plugin = canopy.classFactory(None)
    _plugin.initProcessing()


def main(fn):
    """ct.main(fn), then leaves without Python's teardown: QGIS's C++
    objects destroyed in arbitrary order at interpreter exit can crash and
    turn a pass into a failure."""
    code = 0
    try:
        ct.main(fn)
    except SystemExit as e:
        code = e.code or 0
    if _home:
        shutil.rmtree(_home, ignore_errors=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def make_scenes(folder, sizes, seed=1):
    """Georeferenced RGB GeoTIFFs (w, h) in folder: scene_0.tif, ..."""
    import test_classify_lib as L
    paths = []
    for i, (w, h) in enumerate(sizes):
        p = os.path.join(folder, "scene_%d.tif" % i)
        L.make_scene(p, L.texture(seed + i, 3, h, w), GT, EPSG)
        paths.append(p)
    return paths


def truncated_tiff(path):
    """A TIFF whose header opens and whose pixels are gone."""
    import test_classify_lib as L
    L.make_scene(path, L.texture(99, 3, 384, 384), GT, EPSG)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


def feedback():
    """A QgsProcessingFeedback that keeps its progress values, info lines and
    errors (lists .progress, .info, .errors)."""
    from qgis.core import QgsProcessingFeedback

    class Recorder(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.progress, self.info, self.errors, self.commands = [], [], [], []
            self.progressChanged.connect(self.progress.append)

        def pushInfo(self, text):
            self.info.append(text)

        def pushCommandInfo(self, text):
            self.commands.append(text)

        def reportError(self, text, fatal=False):
            self.errors.append(text)

    return Recorder()


def files(folder):
    """Every name in folder, hidden ones too, sorted."""
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def dialog(alg_id, width=900, height=700, advanced=False):
    """The algorithm's dialog as QGIS opens it from the toolbox (processing's
    AlgorithmDialog on a QMainWindow), shown at width x height, advanced
    parameters expanded when asked; returns (window, dialog)."""
    from qgis.core import QgsApplication
    from qgis.PyQt.QtWidgets import (QApplication, QGroupBox, QMainWindow, QToolButton,
                                     QWidget)
    from processing.gui.AlgorithmDialog import AlgorithmDialog
    alg = QgsApplication.processingRegistry().algorithmById(alg_id).create()
    win = QMainWindow()
    win.resize(width, height)
    dlg = AlgorithmDialog(alg, parent=win)
    dlg.resize(width, height)
    dlg.show()
    for _ in range(10):
        QApplication.processEvents()
    for box in dlg.findChildren(QGroupBox, "grpAdvanced"):
        # (a QgsCollapsibleGroupBox, which Python sees as a QGroupBox, and
        # which remembers its state in QGIS's settings: its own button)
        contents = [w for w in box.findChildren(QWidget) if w.objectName() != "collapseButton"]
        if advanced != any(w.isVisible() for w in contents):
            box.findChild(QToolButton, "collapseButton").click()
    for _ in range(10):
        QApplication.processEvents()
    return win, dlg


def parameters_panel(dlg):
    """The scroll area that holds the parameters' widgets."""
    from qgis.PyQt.QtWidgets import QScrollArea
    areas = [a for a in dlg.mainWidget().findChildren(QScrollArea) if a.isVisible()]
    assert areas, "no parameters panel in the dialog"
    return areas[0]


def browse_buttons(panel):
    """The visible "..." buttons of the parameters' widgets."""
    from qgis.PyQt.QtWidgets import QToolButton
    return [b for b in panel.widget().findChildren(QToolButton)
            if b.isVisible() and b.objectName() != "collapseButton"]


def save_png(widget, path):
    """widget as it is drawn, to a PNG file."""
    assert widget.grab().save(path, "PNG"), path
