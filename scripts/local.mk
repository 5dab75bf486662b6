# scripts: set-up, demo, export and benchmark tools.
EXTRA_DIST += scripts/install-deps scripts/check scripts/fuzz
EXTRA_DIST += scripts/bench scripts/bench-ort.js scripts/bench-torch.py
# export-onnx: installed as canopy-export-onnx (shebang = configure's PYTHON3),
# its module canopy_models.py under $(pkgdatadir)/python where the installed
# script looks for it.
cnpexportdir = $(bindir)
cnpexport_SCRIPTS = canopy-export-onnx
cnppythondir = $(pkgdatadir)/python
dist_cnppython_DATA = scripts/canopy_models.py scripts/canopy_labels.py
canopy-export-onnx: $(srcdir)/scripts/export-onnx Makefile
	$(AM_V_GEN)$(SED) -e '1s|^#!.*|#!$(PYTHON3)|' \
		-e 's|^CANOPY_PYTHONDIR = None$$|CANOPY_PYTHONDIR = "$(cnppythondir)"|' \
		$(srcdir)/scripts/export-onnx > $@.tmp && chmod +x $@.tmp && mv -f $@.tmp $@
CLEANFILES += canopy-export-onnx
EXTRA_DIST += scripts/export-onnx
# Demo data and the demo model (data/canopy-demo.onnx; see data/canopy-demo.md).
EXTRA_DIST += scripts/make-demo-data scripts/demo_scenes.py scripts/train-demo-model
# Monitoring measured on a demo series (make-demo-data --series).
EXTRA_DIST += scripts/alerts-eval
# The README's main job: deps, build, demo scene, classify, compare with truth.
EXTRA_DIST += scripts/demo
# Batch, cron and clusters: canopy-nightly, canopy-parallel and canopy-slurm,
# installed beside canopy (which they look for there first: cron's PATH is
# short); the functions they share, the reader of canopy's JSONL events
# (canopy-batch-events, run with configure's PYTHON3) and the Slurm batch
# script go under $(pkgdatadir), whose path `make` writes into each command's
# `lib_dir=` (and PYTHON3 into `python3=`).
cnpbatchdir = $(bindir)
cnpbatch_SCRIPTS = canopy-nightly canopy-parallel canopy-slurm
dist_pkgdata_DATA += scripts/canopy-batch.sh scripts/canopy-batch-events \
	scripts/canopy-slurm.sbatch scripts/canopy.crontab.example
cnp_batch_gen = $(AM_V_GEN)$(SED) -e "s|^lib_dir=$$|lib_dir='$(pkgdatadir)'|" \
	-e "s|^python3=$$|python3='$(PYTHON3)'|" \
	$(srcdir)/scripts/$@ > $@.tmp && chmod +x $@.tmp && mv -f $@.tmp $@
canopy-nightly: $(srcdir)/scripts/canopy-nightly Makefile
	$(cnp_batch_gen)
canopy-parallel: $(srcdir)/scripts/canopy-parallel Makefile
	$(cnp_batch_gen)
canopy-slurm: $(srcdir)/scripts/canopy-slurm Makefile
	$(cnp_batch_gen)
CLEANFILES += canopy-nightly canopy-parallel canopy-slurm
EXTRA_DIST += scripts/canopy-nightly scripts/canopy-parallel scripts/canopy-slurm
# The installed commands find what they source.
installcheck-local:
	for s in canopy-nightly canopy-parallel canopy-slurm; do \
		$(bindir)/$$s --help >/dev/null || exit 1; \
	done
# The README's pictures (quick-look and report of the demo), regenerated on demand.
EXTRA_DIST += scripts/docs-images docs/demo-quicklook.png docs/demo-report.png
docs-images:
	sh $(srcdir)/scripts/docs-images --skip-deps
.PHONY: docs-images
