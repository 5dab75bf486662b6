"""Widgets for two canopy parameters in the algorithm dialog.

CreationOptions: QGIS's own creation options widget (GDAL's algorithms use
it: a table of NAME=VALUE with profiles), with the parameter's explanation
as its label's tooltip like every other parameter.

MarkerLabels: the marker labels as text (so the modeler and batch mode keep
a plain, checked string) with a "..." button that lists the chosen model's
labels to tick: Processing's enums cannot change their options when another
parameter (the model) changes, so the list is read when the button is
pressed, through `canopy info --json`."""
from qgis.gui import QgsProcessingMultipleSelectionDialog
from qgis.PyQt.QtWidgets import QHBoxLayout, QLineEdit, QMessageBox, QToolButton, QWidget

from processing.algs.gdal.ui.RasterOptionsWidget import RasterOptionsWidgetWrapper
from processing.core.ProcessingConfig import ProcessingConfig
from processing.gui.wrappers import DIALOG_STANDARD, WidgetWrapper

from . import model_info, options, runner
from .i18n import tr


class CreationOptions(RasterOptionsWidgetWrapper):
    def createLabel(self):
        label = super().createLabel()
        if label is not None:
            label.setToolTip(self.parameterDefinition().toolTip())
        return label


class MarkerLabels(WidgetWrapper):
    def createWidget(self):
        self.model_wrapper = None
        self.edit = QLineEdit()
        self.edit.setPlaceholderText(tr("the model's marker labels"))
        self.edit.textChanged.connect(lambda: self.widgetValueHasChanged.emit(self))
        if self.dialogType != DIALOG_STANDARD:
            return self.edit
        widget = QWidget()
        layout = QHBoxLayout(widget)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        layout.addWidget(self.edit)
        self.button = QToolButton()
        self.button.setText("…")
        self.button.setToolTip(tr("Choose among the model's labels"))
        self.button.clicked.connect(self.choose)
        layout.addWidget(self.button)
        return widget

    def createLabel(self):
        label = super().createLabel()
        if label is not None:
            label.setToolTip(self.parameterDefinition().toolTip())
        return label

    def postInitialize(self, wrappers):
        for wrapper in wrappers:
            if wrapper.parameterDefinition().name() == options.MODEL:
                self.model_wrapper = wrapper

    def model_path(self):
        value = self.model_wrapper.parameterValue() if self.model_wrapper else ""
        return str(value or "").strip()

    def model_labels(self):
        """(all labels, the model's marker labels) of the chosen model;
        raises model_info.ModelError or QgsProcessingException."""
        exe = runner.find_canopy(ProcessingConfig.getSetting(runner.SETTING) or "")
        meta = model_info.describe(exe, self.model_path())
        return meta["labels"], [str(x) for x in meta.get("markers") or []]

    def choose(self):
        try:
            labels, markers = self.model_labels()
        except Exception as e:   # canopy missing or the model unreadable: say so
            QMessageBox.warning(self.widget, tr("Marker labels"), str(e))
            return
        current = options.parse_labels(self.edit.text())
        selected = markers if current is None else [x for x in current if x in labels]
        dialog = QgsProcessingMultipleSelectionDialog(labels, selected, self.widget)
        dialog.setWindowTitle(tr("Marker labels"))
        if dialog.exec_():
            self.edit.setText(", ".join(dialog.selectedOptions()) or "none")

    def setValue(self, value):
        self.edit.setText("" if value is None else str(value))

    def value(self):
        return self.edit.text()
