/* onnx_meta.c -- `canopy evaluate --write-model`: a model file with one
 * metadata_props entry set (the bytes from onnx/write.c), written
 * atomically (base/'s writer).
 */
#include "eval/eval.h"
#include "onnx/onnx.h"

#include <stdlib.h>

cnp_status cnp_onnx_set_metadata(cnp_ctx *ctx, const char *in_path, const char *out_path,
                                 const char *key, const char *value)
{
    cnp_status st;
    char *data = NULL;
    void *out = NULL;
    size_t size = 0, out_size = 0;

    st = cnp_file_read(ctx, in_path, CNP_FILE_MAX, &data, &size);
    if (st == CNP_OK)
        st = cnp_onnx_set_metadata_buffer(ctx, data, size, in_path, key, value, &out, &out_size);
    if (st == CNP_OK)
        st = cnp_atomic_write(ctx, out_path, out, out_size);
    free(data);
    free(out);
    return st;
}
