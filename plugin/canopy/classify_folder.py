"""Processing algorithm "Classify folder": every raster in a folder through
one canopy classify run. As on the command line, a scene that fails is
reported and the others are still classified; only a run that classified
nothing is an exception."""
from qgis.core import (QgsProcessingException, QgsProcessingOutputMultipleLayers,
                       QgsProcessingOutputNumber, QgsProcessingOutputString,
                       QgsProcessingParameterFile)

from .algorithm import ClassifyAlgorithm
from .i18n import tr


class ClassifyFolder(ClassifyAlgorithm):
    CLASSIFIED = "CLASSIFIED"
    UP_TO_DATE = "UP_TO_DATE"
    FAILED = "FAILED"
    ERRORS = "ERRORS"

    ID = "classifyfolder"

    def displayName(self):
        return tr("Classify folder")

    def intro(self):
        return "<p>" + tr("Classifies every raster in a folder (canopy's own outputs and side "
                          "files are left alone), as a nightly batch would. A scene that "
                          "cannot be classified is reported and the others are still "
                          "done.") + "</p>"

    def add_input_parameters(self):
        p = QgsProcessingParameterFile(self.INPUT, tr("Input folder"),
                                       behavior=QgsProcessingParameterFile.Folder)
        p.setHelp(tr("A folder of georeferenced scenes: every raster GDAL reads in it."))
        self.addParameter(p)

    def initAlgorithm(self, config=None):
        super().initAlgorithm(config)
        self.addOutput(QgsProcessingOutputMultipleLayers(self.PROBS, tr("Probabilities")))
        self.addOutput(QgsProcessingOutputMultipleLayers(self.MASKS, tr("Masks")))
        self.addOutput(QgsProcessingOutputMultipleLayers(self.MARKERS_OUTPUT, tr("Markers")))
        self.addOutput(QgsProcessingOutputNumber(self.CLASSIFIED, tr("Scenes classified")))
        self.addOutput(QgsProcessingOutputNumber(self.UP_TO_DATE, tr("Scenes up to date")))
        self.addOutput(QgsProcessingOutputNumber(self.FAILED, tr("Scenes failed")))
        self.addOutput(QgsProcessingOutputString(self.ERRORS, tr("canopy's messages")))

    def processAlgorithm(self, parameters, context, feedback):
        folder = self.parameterAsFile(parameters, self.INPUT, context)
        run = self.run_canopy(self.canopy_args(parameters, context) + ["--", folder], feedback)
        if run.returncode == 2 or not run.scenes:
            raise QgsProcessingException(run.message())
        failed = run.counts[2]
        if failed:
            feedback.reportError(tr("{0} of the scenes in {1} failed (see canopy's messages "
                                    "above); the others were classified").format(failed, folder))
        for scene in run.scenes:
            self.open_outputs(scene, parameters, context)
        return {self.OUTPUT_FOLDER: self.output_folder(parameters, context),
                self.PROBS: [s.output("probs") for s in run.scenes],
                self.MASKS: [s.output("masks") for s in run.scenes],
                self.MARKERS_OUTPUT: [s.output("markers") for s in run.scenes],
                self.CLASSIFIED: run.counts[0],
                self.UP_TO_DATE: run.counts[1],
                self.FAILED: failed,
                self.ERRORS: run.message() if run.returncode else ""}
