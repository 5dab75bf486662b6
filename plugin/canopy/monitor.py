"""Processing algorithm "Monitor area": a scene or a folder of scenes of one
area through `canopy classify --alerts DIR`, which adds them to the area's
alert state (DIR) and remakes DIR/alerts.tif and DIR/alerts.geojson. The
new, confirmed and dismissed alert counts come from each scene's scene_done
event; the alerts raster opens with the style canopy writes beside it
(coloured by date), the alerts GeoJSON categorized by confidence."""
import os

from qgis.core import (QgsProcessing, QgsProcessingException, QgsProcessingOutputNumber,
                       QgsProcessingOutputRasterLayer, QgsProcessingOutputString,
                       QgsProcessingOutputVectorLayer, QgsProcessingParameterDateTime,
                       QgsProcessingParameterDefinition, QgsProcessingParameterFile,
                       QgsProcessingParameterNumber, QgsProcessingParameterRasterLayer)

from . import styles
from .algorithm import ClassifyAlgorithm
from .classify_scene import gdal_source
from .i18n import tr


class MonitorArea(ClassifyAlgorithm):
    FOLDER = "FOLDER"
    ALERTS = "ALERTS"
    DATE = "DATE"
    BASELINE = "BASELINE"
    HIGH = "HIGH"
    DISMISS = "DISMISS"
    GRID = "GRID"
    ALERTS_RASTER = "ALERTS_RASTER"
    ALERTS_VECTOR = "ALERTS_VECTOR"
    NEW = "NEW"
    CONFIRMED = "CONFIRMED"
    DISMISSED = "DISMISSED"
    SUMMARY = "SUMMARY"

    ID = "monitorarea"

    def displayName(self):
        return tr("Monitor area")

    def intro(self):
        return ("<p>" + tr(
            "Adds new scenes of one area to its alert state and tells what is new: like "
            "Global Forest Watch's alerts, a cell gets an alert for a marker label when the "
            "label appears where earlier clear observations did not have it. The alert is "
            "unconfirmed at first (or high at once when the probability is high), confirmed "
            "when the next clear observation agrees, and dismissed when the following clear "
            "observations disagree. Clouds and nodata neither confirm nor dismiss.") + "</p><p>" +
            tr("The alert folder keeps the state between runs: give the same folder every time "
               "for the same area. It holds alerts.tif (one band per marker label, 0 = no "
               "alert, else confidence class x 10000 + days since 2014-12-31, as GFW's "
               "integrated alerts) and alerts.geojson (one polygon per alert region with its "
               "label, first detection, last observation, confidence, observations, area and "
               "scenes). Both open in the project; the log and the results give the new, "
               "confirmed and dismissed counts.") + "</p>")

    def add_input_parameters(self):
        p = QgsProcessingParameterRasterLayer(self.INPUT, tr("Input raster"), optional=True)
        p.setHelp(tr("One new scene of the area (or give a folder below)."))
        self.addParameter(p)
        p = QgsProcessingParameterFile(self.FOLDER, tr("Input folder"), optional=True,
                                       behavior=QgsProcessingParameterFile.Folder)
        p.setHelp(tr("A folder of scenes of the area, in any order: they are placed by their "
                     "acquisition dates (or give one raster above)."))
        self.addParameter(p)
        p = QgsProcessingParameterFile(self.ALERTS, tr("Alert folder"),
                                       behavior=QgsProcessingParameterFile.Folder)
        p.setHelp(tr("The area's alert state, made on first use; give the same folder at every "
                     "run for the same area."))
        self.addParameter(p)

    def add_output_parameters(self):
        Int, Double = QgsProcessingParameterNumber.Integer, QgsProcessingParameterNumber.Double
        for p, text in (
                (QgsProcessingParameterDateTime(self.DATE, tr("Acquisition date"),
                                                QgsProcessingParameterDateTime.Date,
                                                optional=True),
                 tr("The scene's date when neither its metadata (e.g. TIFFTAG_DATETIME) nor its "
                    "file name (e.g. 20260412) gives one; for one raster only.")),
                (QgsProcessingParameterNumber(self.BASELINE, tr("Baseline observations"), Int,
                                              None, optional=True, minValue=1, maxValue=100),
                 tr("Clear observations without a label before it can raise an alert. "
                    "Empty: the state's value (canopy's default 2).")),
                (QgsProcessingParameterNumber(self.HIGH, tr("High confidence probability"),
                                              Double, None, optional=True, minValue=0.0,
                                              maxValue=1.0),
                 tr("A new alert with a probability at least this is high at once. Empty: "
                    "the state's value (canopy's default 0.9).")),
                (QgsProcessingParameterNumber(self.DISMISS, tr("Observations to dismiss"), Int,
                                              None, optional=True, minValue=1, maxValue=100),
                 tr("Clear observations without the label that dismiss an unconfirmed alert. "
                    "Empty: the state's value (canopy's default 2).")),
                (QgsProcessingParameterFile(self.GRID, tr("Alert grid"), optional=True),
                 tr("A raster whose grid a new alert state takes, for an area larger than one "
                    "scene. Empty: the first scene's chip grid."))):
            p.setHelp(text)
            p.setFlags(p.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
            self.addParameter(p)
        super().add_output_parameters()

    def initAlgorithm(self, config=None):
        super().initAlgorithm(config)
        self.addOutput(QgsProcessingOutputRasterLayer(self.ALERTS_RASTER, tr("Alerts raster")))
        self.addOutput(QgsProcessingOutputVectorLayer(self.ALERTS_VECTOR, tr("Alerts"),
                                                      QgsProcessing.TypeVectorPolygon))
        self.addOutput(QgsProcessingOutputNumber(self.NEW, tr("New alerts")))
        self.addOutput(QgsProcessingOutputNumber(self.CONFIRMED, tr("Confirmed alerts")))
        self.addOutput(QgsProcessingOutputNumber(self.DISMISSED, tr("Dismissed alerts")))
        self.addOutput(QgsProcessingOutputString(self.SUMMARY, tr("Summary")))

    def scene_band_count(self, parameters, context):
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if layer is None or layer.providerType() != "gdal":
            return None
        return layer.bandCount()

    def checked_values(self, parameters, context):
        v = super().checked_values(parameters, context)
        has_scene = parameters.get(self.INPUT) not in (None, "")
        folder = self.parameterAsFile(parameters, self.FOLDER, context)
        if has_scene == bool(folder):
            raise ValueError(tr("Give either an input raster or an input folder"))
        if folder and parameters.get(self.DATE) not in (None, ""):
            raise ValueError(tr("Acquisition date: only for one raster; the scenes of a folder "
                                "need their own dates (metadata or file name)"))
        alerts = self.parameterAsFile(parameters, self.ALERTS, context)
        if not alerts:
            raise ValueError(tr("Alert folder: give the folder that keeps the area's alerts"))
        if os.path.exists(alerts) and not os.path.isdir(alerts):
            raise ValueError(tr("Alert folder: {0} is a file, not a folder").format(alerts))
        return v

    def alert_args(self, parameters, context):
        args = ["--alerts", os.path.abspath(self.parameterAsFile(parameters, self.ALERTS,
                                                                 context))]
        if parameters.get(self.DATE) not in (None, ""):
            date = self.parameterAsDate(parameters, self.DATE, context)
            args += ["--date", date.toString("yyyy-MM-dd")]
        for name, option, get in ((self.BASELINE, "--alerts-baseline", self.parameterAsInt),
                                  (self.HIGH, "--alerts-high", self.parameterAsDouble),
                                  (self.DISMISS, "--alerts-dismiss", self.parameterAsInt)):
            if parameters.get(name) not in (None, ""):
                args += [option, repr(get(parameters, name, context))]
        grid = self.parameterAsFile(parameters, self.GRID, context)
        if grid:
            args += ["--alerts-grid", grid]
        return args

    def processAlgorithm(self, parameters, context, feedback):
        folder = self.parameterAsFile(parameters, self.FOLDER, context)
        scene = folder or gdal_source(self, parameters, context)
        args = (self.canopy_args(parameters, context) + self.alert_args(parameters, context) +
                ["--", scene])
        run = self.run_canopy(args, feedback)
        if run.returncode == 2 or not run.scenes:
            raise QgsProcessingException(run.message())
        if run.failed:
            feedback.reportError(tr("{0} of the scenes failed (see canopy's messages above); "
                                    "the others were added to the alerts").format(
                                        len(run.failed)))
        counts = {"new": 0, "confirmed": 0, "dismissed": 0}
        lines = []
        state = os.path.abspath(self.parameterAsFile(parameters, self.ALERTS, context))
        for s in run.scenes:
            if s.alerts is not None:
                for k in counts:
                    value = s.alerts.get(k)
                    counts[k] += value if isinstance(value, int) else 0
                state = s.alerts.get("state") or state
                if s.alerts.get("summary"):
                    lines.append("%s: %s" % (s.name, s.alerts["summary"]))
        classified = [s for s in run.scenes if s.status == "ok"]
        if classified and all(s.alerts is None for s in classified):
            # scenes classified and none added to alerts: canopy without --alerts
            raise QgsProcessingException(tr(
                "canopy reported no alerts for {0}: this canopy does not monitor (it needs "
                "classify --alerts); install a canopy of the plugin's release").format(scene))
        summary = tr("{0} new, {1} confirmed, {2} dismissed").format(
            counts["new"], counts["confirmed"], counts["dismissed"])
        feedback.pushInfo(tr("Alerts: {0} ({1})").format(summary, state))
        raster = os.path.join(state, "alerts.tif")
        vector = os.path.join(state, "alerts.geojson")
        if self.parameterAsBoolean(parameters, self.LOAD_OUTPUTS, context):
            name = os.path.basename(os.path.normpath(state))
            if os.path.exists(raster):
                styles.load_on_completion(context, raster, tr("{0} alerts by date").format(name),
                                          True, styles.qml_style(os.path.join(state,
                                                                              "alerts.qml")),
                                          self.ALERTS_RASTER)
            if os.path.exists(vector):
                styles.load_on_completion(context, vector, tr("{0} alerts").format(name), False,
                                          styles.confidence_style(), self.ALERTS_VECTOR)
            for s in run.scenes:
                self.open_outputs(s, parameters, context)
        return {self.OUTPUT_FOLDER: self.output_folder(parameters, context),
                self.ALERTS_RASTER: raster, self.ALERTS_VECTOR: vector,
                self.NEW: counts["new"], self.CONFIRMED: counts["confirmed"],
                self.DISMISSED: counts["dismissed"],
                self.SUMMARY: "\n".join(lines) or summary}
