"""Processing algorithm "Classify scene": one raster layer or file through
canopy classify; a failure is an exception carrying canopy's message."""
from qgis.core import (QgsProcessingException, QgsProcessingOutputFile,
                       QgsProcessingOutputRasterLayer, QgsProcessingOutputVectorLayer,
                       QgsProcessingParameterRasterLayer, QgsProcessing, QgsProviderRegistry)

from .algorithm import ClassifyAlgorithm
from .i18n import tr


def gdal_source(alg, parameters, context):
    """What canopy opens for the layer: its GDAL source."""
    layer = alg.parameterAsRasterLayer(parameters, alg.INPUT, context)
    if layer is None:
        raise QgsProcessingException(alg.invalidRasterError(parameters, alg.INPUT))
    if layer.providerType() != "gdal":
        raise QgsProcessingException(tr(
            "{0}: canopy reads scenes through GDAL, and this layer comes from the {1} "
            "provider; save it as a GeoTIFF first (Export > Save As)").format(
                layer.name(), layer.providerType()))
    source = layer.source()
    if "|" in source:   # QGIS's own options after '|' are no part of the GDAL name
        source = QgsProviderRegistry.instance().decodeUri("gdal", source)["path"]
    return source


class ClassifyScene(ClassifyAlgorithm):
    MANIFEST = "MANIFEST"
    ID = "classifyscene"

    def displayName(self):
        return tr("Classify scene")

    def intro(self):
        return "<p>" + tr("Classifies a georeferenced scene chip by chip with canopy's ResNet "
                          "and finds markers of deforestation.") + "</p>"

    def add_input_parameters(self):
        p = QgsProcessingParameterRasterLayer(self.INPUT, tr("Input raster"))
        p.setHelp(tr("A georeferenced scene that GDAL reads (GeoTIFF, COG, VRT, JP2...), "
                     "any data type and CRS (north-up)."))
        self.addParameter(p)

    def scene_band_count(self, parameters, context):
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if layer is None or layer.providerType() != "gdal":
            return None   # (processAlgorithm refuses what GDAL cannot open)
        return layer.bandCount()

    def initAlgorithm(self, config=None):
        super().initAlgorithm(config)
        self.addOutput(QgsProcessingOutputRasterLayer(self.PROBS, tr("Probabilities")))
        self.addOutput(QgsProcessingOutputRasterLayer(self.MASKS, tr("Masks")))
        self.addOutput(QgsProcessingOutputVectorLayer(self.MARKERS_OUTPUT, tr("Markers"),
                                                      QgsProcessing.TypeVectorPolygon))
        self.addOutput(QgsProcessingOutputFile(self.MANIFEST, tr("Manifest")))

    def processAlgorithm(self, parameters, context, feedback):
        args = self.canopy_args(parameters, context) + ["--", gdal_source(self, parameters,
                                                                           context)]
        run = self.run_canopy(args, feedback)
        if run.returncode != 0 or not run.scenes:
            raise QgsProcessingException(run.message())
        scene = run.scenes[0]
        self.open_outputs(scene, parameters, context,
                          (self.PROBS, self.MASKS, self.MARKERS_OUTPUT))
        return {self.OUTPUT_FOLDER: self.output_folder(parameters, context),
                self.PROBS: scene.output("probs"),
                self.MASKS: scene.output("masks"),
                self.MARKERS_OUTPUT: scene.output("markers"),
                self.MANIFEST: scene.output("manifest")}
