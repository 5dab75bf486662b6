# data: the demo model (canopy's default model), installed under $(pkgdatadir),
# and its model card. Made by scripts/make-demo-data + scripts/train-demo-model
# (see data/canopy-demo.md).
dist_pkgdata_DATA += data/canopy-demo.onnx
EXTRA_DIST += data/canopy-demo.md
