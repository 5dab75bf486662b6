# plugin: the QGIS Processing plugin (plugin/canopy/, Python: nothing to
# build). `make install-plugin` copies it into a QGIS profile
# (QGIS_PLUGINS_DIR=DIR to choose the folder), `make plugin-zip` packs it
# for QGIS's "Install from ZIP"; both through scripts/install-plugin.
PLUGIN_FILES = plugin/canopy/metadata.txt plugin/canopy/icon.svg plugin/canopy/icon.png \
	plugin/canopy/LICENSE plugin/canopy/__init__.py \
	plugin/canopy/plugin.py plugin/canopy/provider.py plugin/canopy/algorithm.py \
	plugin/canopy/classify_scene.py plugin/canopy/classify_folder.py \
	plugin/canopy/runner.py plugin/canopy/styles.py \
	plugin/canopy/i18n.py plugin/canopy/model_info.py plugin/canopy/options.py \
	plugin/canopy/events.py plugin/canopy/monitor.py plugin/canopy/widgets.py
EXTRA_DIST += $(PLUGIN_FILES) scripts/install-plugin scripts/plugin-screenshot \
	scripts/plugin-icon docs/qgis-classifyscene.png docs/qgis-monitorarea.png

QGIS_PLUGINS_DIR =
install-plugin:
	dest='$(QGIS_PLUGINS_DIR)'; \
	$(PYTHON3) $(srcdir)/scripts/install-plugin $${dest:+--dest "$$dest"}
plugin-zip:
	$(PYTHON3) $(srcdir)/scripts/install-plugin --zip canopy-qgis-$(VERSION).zip
# The README's pictures of the dialogs, drawn by headless QGIS.
plugin-screenshots:
	$(PYTHON3) $(srcdir)/scripts/plugin-screenshot $(srcdir)/docs
.PHONY: install-plugin plugin-zip plugin-screenshots
CLEANFILES += canopy-qgis-$(VERSION).zip
