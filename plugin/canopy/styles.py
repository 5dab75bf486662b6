"""Styles for canopy's outputs once QGIS has loaded them: the .qml files
canopy writes beside its rasters, and a categorized renderer (by label) for
the markers GeoJSON.

Processing loads an algorithm's layers itself when it finishes (without
their default styles) and then calls a post-processor per layer; this module
registers that post-processor."""
import json
import zlib

from qgis.core import (QgsCategorizedSymbolRenderer, QgsFillSymbol, QgsProcessingContext,
                       QgsProcessingLayerPostProcessorInterface, QgsProcessingUtils,
                       QgsRendererCategory)

from .i18n import tr

# Marker colours for the Kaggle labels (fill; the outline is the same colour,
# opaque). Other labels get a colour from their name.
MARKER_COLOURS = {
    "agriculture": "255,217,47",
    "artisinal_mine": "152,78,163",
    "bare_ground": "191,129,45",
    "blow_down": "102,166,30",
    "conventional_mine": "106,61,154",
    "cultivation": "253,141,60",
    "habitation": "227,26,28",
    "road": "64,64,64",
    "selective_logging": "27,158,119",
    "slash_burn": "140,20,20",
}

# QGIS keeps only a C++ pointer to a post-processor: the Python object must
# outlive the algorithm. One per output path; a new run replaces it.
_post_processors = {}


class _Styler(QgsProcessingLayerPostProcessorInterface):
    def __init__(self, apply):
        super().__init__()
        self.apply = apply

    def postProcessLayer(self, layer, context, feedback):
        self.apply(layer, feedback)
        layer.triggerRepaint()


def load_on_completion(context, path, name, raster, apply, output_name=""):
    """Asks Processing to open path as layer `name` when the algorithm has
    finished, then to call apply(layer, feedback)."""
    if context.project() is None:
        return
    hint = QgsProcessingUtils.LayerHint.Raster if raster else QgsProcessingUtils.LayerHint.Vector
    context.addLayerToLoadOnCompletion(
        path, QgsProcessingContext.LayerDetails(name, context.project(), output_name, hint))
    _post_processors[path] = _Styler(apply)
    context.layerToLoadOnCompletionDetails(path).setPostProcessor(_post_processors[path])


def qml_style(qml):
    """apply() for a raster: the QML style canopy wrote beside it."""
    def apply(layer, feedback):
        message, ok = layer.loadNamedStyle(qml)
        if not ok:
            feedback.reportError(tr("{0}: the style {1} did not load: {2}").format(
                layer.name(), qml, message))
    return apply


def marker_labels(manifest):
    """The run's marker labels, from its manifest (all of them, so that the
    legend is complete even when a label found nothing)."""
    try:
        with open(manifest) as f:
            return list(json.load(f)["parameters"]["markers"])
    except (OSError, ValueError, KeyError, TypeError):
        return []


def marker_colour(label):
    if label in MARKER_COLOURS:
        return MARKER_COLOURS[label]
    h = zlib.crc32(label.encode())
    return "%d,%d,%d" % (64 + h % 192, 64 + (h >> 8) % 192, 64 + (h >> 16) % 192)


def marker_style(labels):
    """apply() for the markers: one category per label, the run's labels
    first, then any other label the layer holds."""
    def apply(layer, feedback):
        field = layer.fields().indexOf("label")
        if field < 0:
            feedback.reportError(tr("{0}: no 'label' field; left with the default style")
                                 .format(layer.name()))
            return
        found = sorted(str(v) for v in layer.uniqueValues(field) if v is not None)
        categories = []
        for label in labels + [x for x in found if x not in labels]:
            colour = marker_colour(label)
            symbol = QgsFillSymbol.createSimple({
                "color": colour + ",110", "outline_color": colour + ",255",
                "outline_width": "0.5"})
            categories.append(QgsRendererCategory(label, symbol, label.replace("_", " ")))
        layer.setRenderer(QgsCategorizedSymbolRenderer("label", categories))
    return apply


# Alert confidence, weakest to strongest, in Global Forest Watch's alert
# colours (low, high, highest).
CONFIDENCE_COLOURS = (("unconfirmed", "237,164,195"), ("high", "220,102,153"),
                      ("confirmed", "201,42,109"))


def confidence_style():
    """apply() for alerts.geojson: one category per confidence class, GFW's
    colours, any other class the layer holds in grey after them."""
    def apply(layer, feedback):
        field = layer.fields().indexOf("confidence")
        if field < 0:
            feedback.reportError(tr("{0}: no 'confidence' field; left with the default "
                                    "style").format(layer.name()))
            return
        known = [name for name, _ in CONFIDENCE_COLOURS]
        found = sorted(str(v) for v in layer.uniqueValues(field) if v is not None)
        categories = []
        for name, colour in list(CONFIDENCE_COLOURS) + [(x, "128,128,128") for x in found
                                                         if x not in known]:
            symbol = QgsFillSymbol.createSimple({
                "color": colour + ",170", "outline_color": colour + ",255",
                "outline_width": "0.4"})
            categories.append(QgsRendererCategory(name, symbol, name))
        layer.setRenderer(QgsCategorizedSymbolRenderer("confidence", categories))
    return apply
