# tests/security (see tests/local.mk): each test plays an attack or a fault
# from issue 13 and checks that the victim file is untouched, the output
# right or the message right.
TESTS += tests/security/test_georef.py tests/security/test_lossy_co.py \
	tests/security/test_area_geographic.py tests/security/test_qml_labels.py \
	tests/security/test_markers_offglobe.py tests/security/test_messages.py \
	tests/security/test_empty_scenes.py tests/security/test_label_paths.py \
	tests/security/test_sigkill.py tests/security/test_arguments.py
EXTRA_DIST += tests/security/test_georef.py tests/security/test_lossy_co.py \
	tests/security/test_area_geographic.py tests/security/test_qml_labels.py \
	tests/security/test_markers_offglobe.py tests/security/test_messages.py \
	tests/security/test_empty_scenes.py tests/security/test_label_paths.py \
	tests/security/test_sigkill.py tests/security/test_arguments.py
