/* tensor.c -- ONNX TensorProto -> floats or int64s: raw little-endian data
 * or the typed repeated fields, every dimension and length checked before
 * anything is read.
 */
#include "onnx/onnx.h"
#include "onnx/onnx.pb-c.h"

#include <stdio.h>
#include <string.h>

const char *cnp_onnx_dtype_name(int32_t t)
{
    switch (t) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: return "float32";
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8: return "uint8";
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8: return "int8";
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16: return "uint16";
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16: return "int16";
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: return "int32";
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: return "int64";
    case ONNX__TENSOR_PROTO__DATA_TYPE__STRING: return "string";
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: return "bool";
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16: return "float16";
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: return "float64";
    case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16: return "bfloat16";
    default: return "another type";
    }
}

static int is_raw(const Onnx__TensorProto *t)
{
    return t->has_raw_data || t->raw_data.len > 0;
}

/* Bytes per element of the types canopy reads, 0 for the others. */
static size_t elem_size(const Onnx__TensorProto *t)
{
    switch (t->has_data_type ? t->data_type : 0) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
        return 4;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
        return 8;
    default:
        return 0;
    }
}

/* Values stored in the typed repeated field of t's type. */
static size_t typed_count(const Onnx__TensorProto *t)
{
    switch (t->data_type) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: return t->n_float_data;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: return t->n_double_data;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: return t->n_int32_data;
    default: return t->n_int64_data;
    }
}

cnp_status cnp_onnx_tensor_check(cnp_ctx *ctx, const char *file, const char *what,
                                 const Onnx__TensorProto *t, cnp_onnx_tensor_info *info)
{
    size_t count = 1, elem, have;

    memset(info, 0, sizeof *info);
    if ((t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) ||
        t->n_external_data > 0)
        return cnp_error(ctx, CNP_ERR_UNSUPPORTED,
                         "%s: %s keeps its data in an external file, which canopy does not read; "
                         "save the model as one file (onnx.save(model, path, "
                         "save_as_external_data=False), possible below 2 GB)", file, what);
    if (t->segment)
        return cnp_error(ctx, CNP_ERR_UNSUPPORTED, "%s: %s is a segmented tensor, which canopy "
                         "does not read; export the model again", file, what);
    if (t->n_dims > CNP_ONNX_MAX_RANK)
        return cnp_error(ctx, CNP_ERR_UNSUPPORTED, "%s: %s has %zu dimensions (canopy reads at "
                         "most %d)", file, what, t->n_dims, CNP_ONNX_MAX_RANK);
    for (size_t d = 0; d < t->n_dims; d++) {
        if (t->dims[d] < 0 || (uint64_t)t->dims[d] > SIZE_MAX ||
            !cnp_mul_size(count, (size_t)t->dims[d], &count))
            return cnp_error(ctx, CNP_ERR_FORMAT, "%s: %s has an invalid dimension %lld; the file "
                             "is corrupt", file, what, (long long)t->dims[d]);
        info->dims[d] = t->dims[d];
    }
    info->rank = (int)t->n_dims;
    info->count = count;
    if (!(elem = elem_size(t)))
        return CNP_OK; /* bool, strings, ...: harmless unless a node needs the values */
    have = is_raw(t) ? t->raw_data.len / elem : typed_count(t);
    if ((is_raw(t) && t->raw_data.len % elem) || have != count)
        return cnp_error(ctx, CNP_ERR_FORMAT, "%s: %s has %zu values for %zu elements; "
                         "the file is truncated or corrupt", file, what, have, count);
    info->kind = t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ||
                         t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE
                     ? CNP_ONNX_T_FLOAT
                     : CNP_ONNX_T_INT;
    return CNP_OK;
}

static uint32_t rd_le32(const uint8_t *p, size_t i)
{
    return (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
           (uint32_t)p[4 * i + 3] << 24;
}

static int64_t rd_le64(const uint8_t *p, size_t i)
{
    uint64_t u = 0;
    for (int b = 7; b >= 0; b--)
        u = u << 8 | p[8 * i + (size_t)b];
    return (int64_t)u;
}

void cnp_onnx_tensor_floats(const Onnx__TensorProto *t, float *dst)
{
    const int dbl = t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE, raw = is_raw(t);
    size_t count = raw ? t->raw_data.len / (dbl ? 8 : 4) : dbl ? t->n_double_data
                                                                : t->n_float_data;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (raw && !dbl) { /* ONNX stores raw data little-endian, as this host */
        memcpy(dst, t->raw_data.data, count * sizeof *dst);
        return;
    }
#endif
    for (size_t i = 0; i < count; i++) {
        if (raw && !dbl) {
            uint32_t u = rd_le32(t->raw_data.data, i);
            memcpy(&dst[i], &u, sizeof u);
        } else if (raw) {
            int64_t b = rd_le64(t->raw_data.data, i);
            double d;
            memcpy(&d, &b, sizeof d);
            dst[i] = (float)d;
        } else {
            dst[i] = dbl ? (float)t->double_data[i] : t->float_data[i];
        }
    }
}

void cnp_onnx_tensor_ints(const Onnx__TensorProto *t, int64_t *dst)
{
    const int i32 = t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__INT32, raw = is_raw(t);
    size_t count = raw ? t->raw_data.len / (i32 ? 4 : 8) : i32 ? t->n_int32_data
                                                               : t->n_int64_data;
    for (size_t i = 0; i < count; i++) {
        if (raw && i32)
            dst[i] = (int32_t)rd_le32(t->raw_data.data, i);
        else if (raw)
            dst[i] = rd_le64(t->raw_data.data, i);
        else
            dst[i] = i32 ? t->int32_data[i] : t->int64_data[i];
    }
}
