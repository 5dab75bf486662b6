# tests/fuzz (see tests/fuzz/README): libFuzzer targets for the model
# loader, the metadata parser, the label CSV parser and the classify option
# parser. `make check` builds each with replay.c as its main and runs it over
# its saved inputs (tests/fuzz/corpus/NAME, named in the target: fuzz.h).
# With ./configure --enable-fuzzing (clang) the same targets are also built
# with libFuzzer's main (their one source, tests/fuzz/NAME.c, is automake's
# default); scripts/fuzz runs them. All link libcanopy through LDADD
# (Makefile.am).

check_PROGRAMS += tests/fuzz/fuzz_model_replay tests/fuzz/fuzz_meta_replay \
	tests/fuzz/fuzz_labels_replay tests/fuzz/fuzz_options_replay
tests_fuzz_fuzz_model_replay_SOURCES = tests/fuzz/fuzz_model.c tests/fuzz/replay.c
tests_fuzz_fuzz_meta_replay_SOURCES = tests/fuzz/fuzz_meta.c tests/fuzz/replay.c
tests_fuzz_fuzz_labels_replay_SOURCES = tests/fuzz/fuzz_labels.c tests/fuzz/replay.c
tests_fuzz_fuzz_options_replay_SOURCES = tests/fuzz/fuzz_options.c tests/fuzz/replay.c
TESTS += tests/fuzz/fuzz_model_replay tests/fuzz/fuzz_meta_replay tests/fuzz/fuzz_labels_replay \
	tests/fuzz/fuzz_options_replay
EXTRA_DIST += tests/fuzz/README tests/fuzz/corpus tests/fuzz/fuzz.h

if CNP_FUZZING
noinst_PROGRAMS = tests/fuzz/fuzz_model tests/fuzz/fuzz_meta tests/fuzz/fuzz_labels \
	tests/fuzz/fuzz_options
tests_fuzz_fuzz_model_LDFLAGS = -fsanitize=fuzzer
tests_fuzz_fuzz_meta_LDFLAGS = -fsanitize=fuzzer
tests_fuzz_fuzz_labels_LDFLAGS = -fsanitize=fuzzer
tests_fuzz_fuzz_options_LDFLAGS = -fsanitize=fuzzer
endif
