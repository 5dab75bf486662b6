"""The "canopy" Processing provider: its algorithms, its icon and the
setting that names the canopy executable (Settings > Options > Processing >
Providers > canopy, beside the paths of GDAL, GRASS and SAGA)."""
from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from processing.core.ProcessingConfig import ProcessingConfig, Setting

from . import runner
from .algorithm import ICON
from .classify_folder import ClassifyFolder
from .classify_scene import ClassifyScene
from .i18n import tr
from .monitor import MonitorArea


class CanopyProvider(QgsProcessingProvider):
    def id(self):
        return "canopy"

    def name(self):
        return "canopy"

    def longName(self):
        return tr("canopy: deforestation markers and alerts in satellite scenes")

    def icon(self):
        return QIcon(ICON)

    def svgIconPath(self):
        return ICON

    def load(self):
        ProcessingConfig.settingIcons[self.name()] = self.icon()
        ProcessingConfig.addSetting(Setting(
            self.name(), runner.SETTING,
            tr("canopy executable (empty: the CANOPY environment variable, else canopy on "
               "PATH)"),
            "", valuetype=Setting.FILE))
        ProcessingConfig.readSettings()
        self.refreshAlgorithms()
        return True

    def unload(self):
        ProcessingConfig.removeSetting(runner.SETTING)

    def loadAlgorithms(self):
        self.addAlgorithm(ClassifyScene())
        self.addAlgorithm(ClassifyFolder())
        self.addAlgorithm(MonitorArea())
