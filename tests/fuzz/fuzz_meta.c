/* fuzz_meta.c -- libFuzzer target for the metadata parser (canopy.* and
 * Deepness keys, JSON through json-c). Input layout: byte 0 picks the
 * number of model outputs (1..32), byte 1 the channels (1..6), byte 2 a
 * fixed input size (0 or 32..286); the rest is lines `key=value`.
 *
 * Under `make check` the replay main (replay.c) runs every saved input of
 * tests/fuzz/corpus/meta.
 */
#include "onnx/onnx.h"
#include "fuzz.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KEYS 64

const char cnp_fuzz_corpus[] = "tests/fuzz/corpus/meta";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *keys[MAX_KEYS], *vals[MAX_KEYS];
    cnp_meta_params params;
    cnp_model_meta meta;
    cnp_ctx ctx;
    char *text;
    size_t n = 0;
    int n_out, n_ch, fixed;

    if (size < 3)
        return 0;
    n_out = data[0] % 32 + 1;
    n_ch = data[1] % 6 + 1;
    fixed = data[2] < 128 ? 0 : 32 + (data[2] - 128) * 2;
    text = malloc(size - 3 + 1);
    if (!text)
        return 0;
    memcpy(text, data + 3, size - 3);
    text[size - 3] = '\0';
    for (char *line = text; line && n < MAX_KEYS;) {
        char *next = strchr(line, '\n'), *eq;
        if (next)
            *next++ = '\0';
        eq = strchr(line, '=');
        if (eq) {
            *eq = '\0';
            keys[n] = line;
            vals[n++] = eq + 1;
        }
        line = next;
    }
    cnp_ctx_clear(&ctx);
    memset(&params, 0, sizeof params);
    params.file = "fuzz.onnx";
    params.props.keys = keys;
    params.props.vals = vals;
    params.props.n = n;
    params.n_outputs = n_out;
    params.n_channels = n_ch;
    params.fixed_size = fixed;
    cnp_meta_peek_input_size(&params.props);
    cnp_meta_parse(&ctx, &params, &meta);
    cnp_meta_clear(&meta);
    free(text);
    return 0;
}
