"""What canopy's algorithms share: the parameters of `canopy classify`
(options.py), their checks against the chosen model, the help panel, the
command line made from them, running it, and opening a scene's outputs."""
import os

from qgis.core import (QgsProcessingAlgorithm, QgsProcessingException, QgsProcessingFeedback,
                       QgsProcessingParameterBoolean, QgsProcessingParameterFolderDestination)
from qgis.PyQt.QtGui import QIcon

from processing.core.ProcessingConfig import ProcessingConfig

from . import model_info, options, runner, styles
from .i18n import tr

ICON = os.path.join(os.path.dirname(__file__), "icon.svg")
HELP_URL = "https://github.com/canopy-classifier/canopy#qgis"


def help_outputs():
    return "<p>" + tr(
        "For each scene NAME, canopy writes into the output folder NAME.probs.tif (one band "
        "per label: each chip's probability), NAME.masks.tif (1 where a label's probability "
        "reaches its threshold), NAME.markers.geojson (deforestation markers: one polygon per "
        "connected region of positive chips per marker label, EPSG:4326) and "
        "NAME.manifest.json (inputs, model, parameters, counts). They open styled in the "
        "project when the algorithm ends. A scene already classified with the same model and "
        "parameters is not classified again.") + "</p>"


def help_program():
    return "<p>" + tr(
        "Cancelling stops canopy; the scene in progress leaves no output. The canopy program "
        "is the one named in Settings > Options > Processing > Providers > canopy, else by "
        "the CANOPY environment variable, else the one on PATH.").replace(">", "&gt;") + "</p>"


class CanopyAlgorithm(QgsProcessingAlgorithm):
    """Name, icon, help and the canopy program, for every canopy algorithm."""
    ID = ""

    def name(self):
        return self.ID

    def icon(self):
        return QIcon(ICON)

    def svgIconPath(self):
        return ICON

    def helpUrl(self):
        return HELP_URL

    def createInstance(self):
        return type(self)()

    def intro(self):
        """The help panel's first paragraphs (each algorithm its own)."""
        return ""

    def shortHelpString(self):
        items = "".join("<dt><b>%s</b></dt><dd>%s</dd>" % (p.description(), p.help())
                        for p in self.parameterDefinitions() if p.help())
        return (self.intro() + help_outputs() + "<h3>" + tr("Parameters") + "</h3><dl>" +
                items + "</dl>" + help_program())

    def canopy_program(self):
        return runner.find_canopy(ProcessingConfig.getSetting(runner.SETTING) or "")

    def run_canopy(self, args, feedback):
        """Runs canopy classify; a cancelled run is an exception carrying
        canopy's own account of what it left (unless canopy had finished
        anyway: then its outputs are complete and returned)."""
        run = runner.run_classify(self.canopy_program(), args,
                                  feedback or QgsProcessingFeedback())
        if run.canceled and run.returncode != 0:
            kept = (tr("; the {0} scenes finished before are complete and kept").format(
                len(run.scenes)) if run.scenes else "")
            raise QgsProcessingException(tr("Cancelled: {0}").format(run.message()) + kept)
        return run


class ClassifyAlgorithm(CanopyAlgorithm):
    INPUT = "INPUT"                     # the scene or the folder
    PROBS = "PROBS"                     # outputs: one path, or a list for a folder
    MASKS = "MASKS"
    MARKERS_OUTPUT = "MARKERS_OUTPUT"
    OUTPUT_FOLDER = "OUTPUT_FOLDER"
    LOAD_OUTPUTS = "LOAD_OUTPUTS"

    def add_input_parameters(self):
        """The scene or scenes (each algorithm its own)."""
        raise NotImplementedError

    def add_output_parameters(self):
        p = QgsProcessingParameterFolderDestination(self.OUTPUT_FOLDER, tr("Output folder"))
        p.setHelp(tr("Where canopy writes each scene's outputs (created when missing)."))
        self.addParameter(p)
        p = QgsProcessingParameterBoolean(self.LOAD_OUTPUTS, tr("Open outputs"), True)
        p.setHelp(tr("Add the probabilities, masks and markers to the project, styled."))
        self.addParameter(p)

    def initAlgorithm(self, config=None):
        self.add_input_parameters()
        for p in options.definitions():
            self.addParameter(p)
        self.add_output_parameters()

    def scene_band_count(self, parameters, context):
        """The input scene's band count, when the algorithm knows it."""
        return None

    def checked_values(self, parameters, context):
        """The canopy options parsed and checked against the model (and the
        scene's bands); ValueError with the message for the user."""
        v = options.values(self, parameters, context)
        try:
            meta = model_info.describe(self.canopy_program(), v["model"])
        except model_info.ModelError as e:
            raise ValueError(tr("ONNX model: {0}").format(e))
        options.check_against_model(v, meta, self.scene_band_count(parameters, context))
        return v

    def checkParameterValues(self, parameters, context):
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        try:
            self.checked_values(parameters, context)
        except (ValueError, QgsProcessingException) as e:
            return False, str(e)
        return True, ""

    def canopy_args(self, parameters, context):
        """canopy classify's options (without --progress and the scenes)."""
        try:
            v = self.checked_values(parameters, context)
        except ValueError as e:
            raise QgsProcessingException(str(e))
        return options.arguments(v) + ["-o", self.output_folder(parameters, context)]

    def output_folder(self, parameters, context):
        return os.path.abspath(self.parameterAsString(parameters, self.OUTPUT_FOLDER, context))

    def open_outputs(self, scene, parameters, context, output_names=("", "", "")):
        """Opens a scene's probabilities, masks and markers (the paths its
        scene_done event gives) when the algorithm ends, styled."""
        if not self.parameterAsBoolean(parameters, self.LOAD_OUTPUTS, context):
            return
        manifest = scene.output("manifest")
        markers = styles.marker_style(styles.marker_labels(manifest) if manifest else [])
        for (kind, title, raster), output_name in zip((
                ("probs", tr("probabilities"), True), ("masks", tr("masks"), True),
                ("markers", tr("markers"), False)), output_names):
            path = scene.output(kind)
            if not path or not os.path.exists(path):
                continue
            apply = styles.qml_style(os.path.splitext(path)[0] + ".qml") if raster else markers
            styles.load_on_completion(context, path, "%s %s" % (scene.name, title), raster,
                                      apply, output_name)
