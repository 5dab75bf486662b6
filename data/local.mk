# data: the demo model (canopy's default model), installed under $(pkgdatadir),
# and its model card. Made by scripts/make-demo-data + scripts/train-demo-model
# (see data/canopy-demo.md).
