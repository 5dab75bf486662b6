/* fuzz.h -- what every fuzz target defines: libFuzzer's entry point, and
 * the folder of its saved inputs that the replay main (replay.c) runs
 * under `make check`. */
#ifndef CNP_TESTS_FUZZ_H
#define CNP_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The target's corpus under the source tree, "tests/fuzz/corpus/NAME". */
extern const char cnp_fuzz_corpus[];

#endif
