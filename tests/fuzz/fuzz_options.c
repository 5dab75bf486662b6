/* fuzz_options.c -- libFuzzer target for canopy classify's option parser
 * (cnp_classify_options_new: argv -> options, the -co checks against the
 * GTiff/COG drivers included). Input: the arguments separated by NUL
 * bytes (at most 64). Any arguments give options or a usage error, never a
 * crash, a leak or undefined behaviour.
 *
 * Under `make check` the replay main (replay.c) runs every saved input of
 * tests/fuzz/corpus/options.
 */
#include "canopy/classify.h"
#include "fuzz.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ARGS 64

const char cnp_fuzz_corpus[] = "tests/fuzz/corpus/options";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1), *argv[MAX_ARGS + 1];
    cnp_classify_options *o;
    cnp_ctx ctx;
    int argc = 0;
    size_t i, start = 0;

    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    for (i = 0; i <= size && argc < MAX_ARGS; i++) {
        if (text[i] == '\0') {
            argv[argc++] = text + start;
            start = i + 1;
        }
    }
    argv[argc] = NULL;
    cnp_ctx_clear(&ctx);
    o = cnp_classify_options_new(argc, argv, &ctx);
    cnp_classify_options_free(o);
    free(text);
    return 0;
}
