# scripts: set-up, demo, export and benchmark tools.
EXTRA_DIST += scripts/install-deps scripts/check
EXTRA_DIST += scripts/bench scripts/bench-ort.js scripts/bench-torch.py
# export-onnx: installed as canopy-export-onnx (shebang = configure's PYTHON3),
# its module canopy_models.py under $(pkgdatadir)/python where the installed
# script looks for it.
cnpexportdir = $(bindir)
cnpexport_SCRIPTS = canopy-export-onnx
cnppythondir = $(pkgdatadir)/python
dist_cnppython_DATA = scripts/canopy_models.py
canopy-export-onnx: $(srcdir)/scripts/export-onnx Makefile
	$(AM_V_GEN)$(SED) -e '1s|^#!.*|#!$(PYTHON3)|' \
		-e 's|^CANOPY_PYTHONDIR = None$$|CANOPY_PYTHONDIR = "$(cnppythondir)"|' \
		$(srcdir)/scripts/export-onnx > $@.tmp && chmod +x $@.tmp && mv -f $@.tmp $@
CLEANFILES += canopy-export-onnx
EXTRA_DIST += scripts/export-onnx
# Demo data and the demo model (data/canopy-demo.onnx; see data/canopy-demo.md).
EXTRA_DIST += scripts/make-demo-data scripts/demo_scenes.py scripts/train-demo-model
# The README's main job: deps, build, demo scene, classify, compare with truth.
EXTRA_DIST += scripts/demo
