"""What both canopy algorithms share: the parameters of `canopy classify`,
the command line made from them, running it, and opening a scene's outputs."""
import os
import re
import shlex

from qgis.core import (QgsProcessingAlgorithm, QgsProcessingException, QgsProcessingFeedback,
                       QgsProcessingParameterBoolean, QgsProcessingParameterDefinition,
                       QgsProcessingParameterFile, QgsProcessingParameterFolderDestination,
                       QgsProcessingParameterNumber, QgsProcessingParameterString)
from qgis.PyQt.QtGui import QIcon

from processing.core.ProcessingConfig import ProcessingConfig

from . import runner, styles

ICON = os.path.join(os.path.dirname(__file__), "icon.svg")

# Options "Other options" may not hold, and why.
_OUTPUT = "the Output folder parameter sets it"
_QUIET = "it would hide the progress and results the plugin reads"
_HELP = "it prints help instead of classifying"
_REFUSED = {"-o": _OUTPUT, "--output": _OUTPUT, "-q": _QUIET, "--quiet": _QUIET, "-h": _HELP,
            "--help": _HELP}

HELP_COMMON = """
<p>canopy writes, for each scene NAME, into the output folder: <b>NAME.probs.tif</b> (one band
per label, the probability of each chip), <b>NAME.masks.tif</b> (1 where a label's probability
reaches its threshold), <b>NAME.markers.geojson</b> (deforestation markers: one polygon per
connected region of positive chips per marker label, EPSG:4326) and <b>NAME.manifest.json</b>
(inputs, model, parameters, counts). The rasters and markers open styled when the algorithm
ends. A scene already classified with the same model and parameters is not classified again.</p>
<p>Cancelling stops canopy: the scene in progress leaves no output.</p>
<p>The canopy program is the one named in Settings &gt; Options &gt; Processing &gt; Providers
&gt; canopy, else by the CANOPY environment variable, else the one on PATH.
See <code>canopy classify --help</code> for every option.</p>"""


class ClassifyAlgorithm(QgsProcessingAlgorithm):
    INPUT = "INPUT"                     # the scene or the folder
    PROBS = "PROBS"                     # outputs: one path, or a list for a folder
    MASKS = "MASKS"
    MARKERS_OUTPUT = "MARKERS_OUTPUT"
    MODEL = "MODEL"
    CHIP = "CHIP"
    STRIDE = "STRIDE"
    TTA = "TTA"
    THRESHOLDS = "THRESHOLDS"
    MARKERS = "MARKERS"
    THREADS = "THREADS"
    BANDS = "BANDS"
    SCALE_RANGE = "SCALE_RANGE"
    GSD = "GSD"
    EXTRA_ARGS = "EXTRA_ARGS"
    OUTPUT_FOLDER = "OUTPUT_FOLDER"
    LOAD_OUTPUTS = "LOAD_OUTPUTS"

    ID = TITLE = HELP = ""              # each algorithm's own

    def name(self):
        return self.ID

    def displayName(self):
        return self.TITLE

    def shortHelpString(self):
        return self.HELP + HELP_COMMON

    def icon(self):
        return QIcon(ICON)

    def svgIconPath(self):
        return ICON

    def createInstance(self):
        return type(self)()

    def add_input_parameters(self):
        """The scene or scenes (each algorithm its own)."""
        raise NotImplementedError

    def initAlgorithm(self, config=None):
        self.add_input_parameters()
        self.addParameter(QgsProcessingParameterFile(
            self.MODEL, "ONNX model (empty: canopy's default, $CANOPY_MODEL or the demo model)",
            extension="onnx", optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            self.CHIP, "Chip size (pixels at the model's ground sampling distance)",
            QgsProcessingParameterNumber.Integer, 256, minValue=8, maxValue=65536))
        self.addParameter(QgsProcessingParameterNumber(
            self.STRIDE, "Stride between chips (pixels; 0: the chip size, no overlap)",
            QgsProcessingParameterNumber.Integer, 0, minValue=0, maxValue=65536))
        self.addParameter(QgsProcessingParameterBoolean(
            self.TTA, "Average over the 8 rotations and flips of each chip (8x slower)", False))
        self.addParameter(QgsProcessingParameterString(
            self.THRESHOLDS, "Thresholds, LABEL=P separated by commas (empty: the model's)",
            optional=True))
        self.addParameter(QgsProcessingParameterString(
            self.MARKERS, "Marker labels for the GeoJSON, separated by commas, or none "
            "(empty: the model's)", optional=True))
        advanced = [
            QgsProcessingParameterNumber(self.THREADS, "Threads (0: all cores)",
                                         QgsProcessingParameterNumber.Integer, 0, minValue=0,
                                         maxValue=1024),
            QgsProcessingParameterString(self.BANDS, "Scene bands fed to the model, e.g. 3,2,1 "
                                         "(empty: the model's)", optional=True),
            QgsProcessingParameterString(self.SCALE_RANGE, "Scale range MIN,MAX of the raw "
                                         "values, e.g. 0,3000 (empty: the model's scale)",
                                         optional=True),
            QgsProcessingParameterString(self.GSD, "Ground sampling distance to read chips at, "
                                         "metres or native (empty: the model's)", optional=True),
            QgsProcessingParameterString(self.EXTRA_ARGS, "Other canopy classify options, e.g. "
                                         "--probs-type Float32 --split-masks", optional=True),
        ]
        for p in advanced:
            p.setFlags(p.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
            self.addParameter(p)
        self.addParameter(QgsProcessingParameterFolderDestination(
            self.OUTPUT_FOLDER, "Output folder"))
        self.addParameter(QgsProcessingParameterBoolean(
            self.LOAD_OUTPUTS, "Open the outputs in the project", True))

    def canopy_args(self, parameters, context):
        """canopy classify's options (without --progress and the scenes)."""
        def text(name):
            return (self.parameterAsString(parameters, name, context) or "").strip()

        def number(name):
            return self.parameterAsInt(parameters, name, context)

        args = []
        if text(self.MODEL):
            args += ["-m", text(self.MODEL)]
        args += ["--chip", str(number(self.CHIP))]
        if number(self.STRIDE):
            args += ["--stride", str(number(self.STRIDE))]
        if self.parameterAsBoolean(parameters, self.TTA, context):
            args.append("--tta")
        thresholds = re.sub(r"\s*=\s*", "=", text(self.THRESHOLDS))
        for t in filter(None, re.split(r"[\s,;]+", thresholds)):
            args += ["--threshold", t]
        for option, name in (("--markers", self.MARKERS), ("--bands", self.BANDS),
                             ("--scale-range", self.SCALE_RANGE)):
            if text(name):
                args += [option, re.sub(r"\s+", "", text(name))]
        if text(self.GSD):
            args += ["--gsd", text(self.GSD)]
        if number(self.THREADS):
            args += ["--threads", str(number(self.THREADS))]
        try:
            extra = shlex.split(text(self.EXTRA_ARGS))
        except ValueError as e:
            raise QgsProcessingException("Other canopy classify options: %s" % e)
        for a in extra:
            if a.split("=", 1)[0] in _REFUSED:
                raise QgsProcessingException("Other canopy classify options: remove %s: %s"
                                             % (a, _REFUSED[a.split("=", 1)[0]]))
        args += extra
        return args + ["-o", self.output_folder(parameters, context)]

    def output_folder(self, parameters, context):
        return os.path.abspath(self.parameterAsString(parameters, self.OUTPUT_FOLDER, context))

    def run_canopy(self, args, feedback):
        """Runs canopy classify; a cancelled run is an exception carrying
        canopy's own account of what it left (unless canopy had finished
        anyway: then its outputs are complete and returned)."""
        exe = runner.find_canopy(ProcessingConfig.getSetting(runner.SETTING) or "")
        run = runner.run_classify(exe, args, feedback or QgsProcessingFeedback())
        if run.canceled and run.returncode != 0:
            raise QgsProcessingException("Cancelled: %s" % run.message())
        return run

    def open_outputs(self, scene, parameters, context, output_names=("", "", "")):
        """Opens a scene's probabilities, masks and markers when the algorithm
        ends, styled."""
        if not self.parameterAsBoolean(parameters, self.LOAD_OUTPUTS, context):
            return
        name = os.path.basename(scene.base)
        markers = styles.marker_style(styles.marker_labels(scene.output(".manifest.json")))
        for (suffix, title, raster, apply), output_name in zip((
                (".probs.tif", "probabilities", True, styles.qml_style(scene.output(".probs.qml"))),
                (".masks.tif", "masks", True, styles.qml_style(scene.output(".masks.qml"))),
                (".markers.geojson", "markers", False, markers)), output_names):
            if os.path.exists(scene.output(suffix)):
                styles.load_on_completion(context, scene.output(suffix), "%s %s" % (name, title),
                                          raster, apply, output_name)
