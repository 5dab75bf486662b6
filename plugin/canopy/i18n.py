"""Translation of the plugin's user-visible strings (Qt's translate, in
the context "canopy"), so that QGIS's translation tools find them."""
from qgis.PyQt.QtCore import QCoreApplication


def tr(text):
    """text translated into QGIS's language (unchanged without a translation)."""
    return QCoreApplication.translate("canopy", text)
