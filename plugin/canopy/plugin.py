"""The plugin object QGIS drives: it registers the Processing provider (on
initProcessing, which QGIS calls for plugins with hasProcessingProvider=yes,
and from initGui) and removes it on unload."""
from qgis.core import QgsApplication

from .provider import CanopyProvider


class CanopyPlugin:
    def __init__(self, iface):
        self.iface = iface
        self.provider = None

    def initProcessing(self):
        if self.provider is None:
            self.provider = CanopyProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):
        self.initProcessing()

    def unload(self):
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
