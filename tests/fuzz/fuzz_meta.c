/* fuzz_meta.c -- libFuzzer target for the metadata parser (canopy.* and
 * Deepness keys, JSON through json-c). Input layout: byte 0 picks the
 * number of model outputs (1..32), byte 1 the channels (1..6), byte 2 a
 * fixed input size (0 or 32..286); the rest is lines `key=value`.
 *
 * Under `make check` the replay main (replay.c) runs every saved input of
 * tests/fuzz/corpus/meta.
 */
#include "engine/graph.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KEYS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *keys[MAX_KEYS], *vals[MAX_KEYS];
    cnp_arena arena = {NULL, 0};
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
    cnp_meta_peek_input_size(keys, vals, n);
    cnp_meta_parse(&ctx, &arena, "fuzz.onnx", keys, vals, n, n_out, n_ch, fixed, &meta);
    cnp_arena_release(&arena);
    free(text);
    return 0;
}
