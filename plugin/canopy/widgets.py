"""The creation options' widget: QGIS's own (GDAL's algorithms use it: a
table of NAME=VALUE with profiles), with the parameter's explanation as its
label's tooltip like every other parameter."""
from processing.algs.gdal.ui.RasterOptionsWidget import RasterOptionsWidgetWrapper


class CreationOptions(RasterOptionsWidgetWrapper):
    def createLabel(self):
        label = super().createLabel()
        if label is not None:
            label.setToolTip(self.parameterDefinition().toolTip())
        return label
