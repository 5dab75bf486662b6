"""Processing algorithm "Classify scene": one raster layer or file through
canopy classify; a failure is an exception carrying canopy's message."""
from qgis.core import (QgsProcessingException, QgsProcessingOutputFile,
                       QgsProcessingOutputRasterLayer, QgsProcessingOutputVectorLayer,
                       QgsProcessingParameterRasterLayer, QgsProcessing, QgsProviderRegistry)

from .algorithm import ClassifyAlgorithm


class ClassifyScene(ClassifyAlgorithm):
    MANIFEST = "MANIFEST"
    ID = "classifyscene"
    TITLE = "Classify scene"
    HELP = ("<p>Classifies a georeferenced scene chip by chip with canopy's ResNet and finds "
            "markers of deforestation.</p>")

    def add_input_parameters(self):
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, "Scene"))

    def initAlgorithm(self, config=None):
        super().initAlgorithm(config)
        self.addOutput(QgsProcessingOutputRasterLayer(self.PROBS, "Probabilities"))
        self.addOutput(QgsProcessingOutputRasterLayer(self.MASKS, "Masks"))
        self.addOutput(QgsProcessingOutputVectorLayer(self.MARKERS_OUTPUT, "Markers",
                                                      QgsProcessing.TypeVectorPolygon))
        self.addOutput(QgsProcessingOutputFile(self.MANIFEST, "Manifest"))

    def scene_source(self, parameters, context):
        """What canopy opens for the layer: its GDAL source."""
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if layer is None:
            raise QgsProcessingException(self.invalidRasterError(parameters, self.INPUT))
        if layer.providerType() != "gdal":
            raise QgsProcessingException(
                "%s: canopy reads scenes through GDAL, and this layer comes from the %s "
                "provider; save it as a GeoTIFF first (Export > Save As)"
                % (layer.name(), layer.providerType()))
        source = layer.source()
        if "|" in source:   # QGIS's own options after '|' are no part of the GDAL name
            source = QgsProviderRegistry.instance().decodeUri("gdal", source)["path"]
        return source

    def processAlgorithm(self, parameters, context, feedback):
        args = self.canopy_args(parameters, context) + ["--", self.scene_source(parameters,
                                                                               context)]
        run = self.run_canopy(args, feedback)
        if run.returncode != 0 or not run.scenes:
            raise QgsProcessingException(run.message())
        scene = run.scenes[0]
        self.open_outputs(scene, parameters, context,
                          (self.PROBS, self.MASKS, self.MARKERS_OUTPUT))
        return {self.OUTPUT_FOLDER: self.output_folder(parameters, context),
                self.PROBS: scene.output(".probs.tif"),
                self.MASKS: scene.output(".masks.tif"),
                self.MARKERS_OUTPUT: scene.output(".markers.geojson"),
                self.MANIFEST: scene.output(".manifest.json")}
