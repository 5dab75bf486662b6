/* fuzz_labels.c -- libFuzzer target for the Kaggle label file parser
 * (train_v2.csv: header, RFC 4180 quoting, BOM, line ends, tags against the
 * model's labels). Any bytes give a table or a clear error, never a crash,
 * a leak or undefined behaviour. The labels are the library's own Kaggle
 * defaults (what a 17-output model without metadata gets).
 *
 * Under `make check` the replay main (replay.c) runs every saved input of
 * tests/fuzz/corpus/labels.
 */
#include "onnx/onnx.h"
#include "eval/eval.h"
#include "fuzz.h"

#include <stdint.h>

const char cnp_fuzz_corpus[] = "tests/fuzz/corpus/labels";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cnp_meta_params params = {"fuzz.onnx", {NULL, NULL, 0}, 17, 3, 0, NULL};
    cnp_model_meta meta;
    cnp_label_table *t = NULL;
    cnp_ctx ctx;

    cnp_ctx_clear(&ctx);
    if (cnp_meta_parse(&ctx, &params, &meta) == CNP_OK)
        cnp_label_table_parse(&ctx, (const char *)data, size, "fuzz.csv",
                              (const char *const *)meta.labels, meta.n_labels, &t);
    cnp_label_table_free(t);
    cnp_meta_clear(&meta);
    return 0;
}
