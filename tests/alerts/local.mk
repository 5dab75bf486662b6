# tests/alerts (see tests/local.mk): monitoring, alerts over time.
# Known-answer series of probabilities rasters made with GDAL (the rule,
# late delivery, idempotence, SIGKILL, other grids checked against gdalwarp,
# dates), then the demo series end to end with the demo model.
TESTS += tests/alerts/test_alerts_rule.py tests/alerts/test_alerts_kill.py \
	tests/alerts/test_alerts_grid.py tests/alerts/test_alerts_date.py \
	tests/alerts/test_alerts_series.py tests/alerts/test_alerts_classify.py
EXTRA_DIST += tests/alerts/alertslib.py tests/alerts/test_alerts_rule.py \
	tests/alerts/test_alerts_kill.py tests/alerts/test_alerts_grid.py \
	tests/alerts/test_alerts_date.py tests/alerts/test_alerts_series.py \
	tests/alerts/test_alerts_classify.py
