/* fuzz_model.c -- libFuzzer target for the ONNX model loader (protobuf
 * parsing, tensors, lowering, fusion, shape pass, metadata): any bytes must
 * give a model or a clear error, never a crash, a leak or an invalid read.
 * Small models that load are also planned at 32x32 and run once.
 *
 * Under `make check` the replay main (replay.c) runs every saved input of
 * tests/fuzz/corpus/model. To fuzz, build the library sources with clang's
 * -fsanitize=fuzzer-no-link,address and link this file with
 * -fsanitize=fuzzer,address (see tests/fuzz/README).
 */
#include "engine/engine.h"
#include "fuzz.h"

#include <stdint.h>
#include <stdlib.h>

const char cnp_fuzz_corpus[] = "tests/fuzz/corpus/model";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cnp_ctx ctx;
    cnp_model *m = NULL;
    cnp_model_info info;
    float *x = NULL, *p = NULL;

    cnp_ctx_clear(&ctx);
    if (cnp_model_load_buffer(&ctx, data, size, "fuzz.onnx", &m) != CNP_OK)
        return 0;
    cnp_model_info_get(m, &info);
    if (info.n_params <= 200000 &&
        cnp_model_prepare(&ctx, m, &(cnp_prepare_options){.max_batch = 2, .height = 32, .width = 32,
                                                           .n_threads = 1,
                                                           .flags = CNP_PREPARE_TTA}) == CNP_OK) {
        const cnp_model_meta *meta = cnp_model_meta_cget(m);
        x = calloc((size_t)2 * meta->n_channels * 32 * 32, sizeof *x);
        p = calloc((size_t)2 * meta->n_labels, sizeof *p);
        if (x && p) {
            cnp_model_forward(&ctx, m, x, 2, p);
            cnp_model_forward_tta(&ctx, m, x, 1, p);
        }
    }
    free(x);
    free(p);
    cnp_model_free(m);
    return 0;
}
