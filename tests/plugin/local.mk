# tests/plugin (see tests/local.mk): the QGIS plugin in real headless QGIS
# (qgistest.py starts it), and its reader of canopy's event stream.
PLUGIN_TESTS = tests/plugin/test_plugin_events.py tests/plugin/test_plugin_package.py \
	tests/plugin/test_plugin_scene.py tests/plugin/test_plugin_folder.py \
	tests/plugin/test_plugin_errors.py tests/plugin/test_plugin_cancel.py \
	tests/plugin/test_plugin_dialog.py tests/plugin/test_plugin_zip.py \
	tests/plugin/test_plugin_modeler.py tests/plugin/test_plugin_monitor.py
TESTS += $(PLUGIN_TESTS)
EXTRA_DIST += $(PLUGIN_TESTS) tests/plugin/qgistest.py
CLEANFILES += tests/plugin/dialog-*.png
