"""canopy's QGIS plugin: a Processing provider whose algorithms run the canopy
command-line classifier. QGIS imports this package and calls classFactory."""


def classFactory(iface):
    """Entry point QGIS calls with its interface (None when headless)."""
    from .plugin import CanopyPlugin
    return CanopyPlugin(iface)
