# alerts: monitoring, deforestation alerts over time (alert state folder,
# observations on a fixed grid, the rule, alerts.tif/.geojson).
classifier_libcanopy_la_SOURCES += classifier/alerts/alerts.h classifier/alerts/internal.h \
	classifier/alerts/state.c classifier/alerts/observe.c classifier/alerts/rule.c \
	classifier/alerts/output.c
