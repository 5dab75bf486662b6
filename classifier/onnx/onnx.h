/* onnx.h -- the ONNX file format and canopy's metadata schema, shared by the
 * engine (loading a model) and eval (writing optimised thresholds back).
 *
 *   - the wire format: onnx.proto (Debian's libonnx-dev) compiled by
 *     protoc-c into onnx/onnx.pb-c.[ch] (see local.mk); unpacking a model
 *     with its header checked (read.c); tensors decoded with every length
 *     and dimension checked (tensor.c); one metadata_props entry rewritten
 *     with every other byte kept (write.c);
 *   - the `canopy.*` metadata keys, their Deepness-style fallbacks and
 *     their documented defaults, in one place (meta.c).
 *
 * Code that walks a ModelProto's fields includes "onnx/onnx.pb-c.h" as
 * well; this header only names the protobuf types, so that it can be
 * included where protobuf-c's headers are not wanted.
 */
#ifndef CNP_ONNX_H
#define CNP_ONNX_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

typedef struct Onnx__ModelProto Onnx__ModelProto;
typedef struct Onnx__TensorProto Onnx__TensorProto;

/* ---- Reading ------------------------------------------------------------ */

/* Opsets of the default domain canopy reads. */
#define CNP_ONNX_OPSET_MIN 11
#define CNP_ONNX_OPSET_MAX 17

/* Bounds on geometry read from a file. */
#define CNP_ONNX_MAX_DIM (1 << 24)
#define CNP_ONNX_MAX_WINDOW 4096
#define CNP_ONNX_MAX_RANK 8

/* What the ModelProto says about itself. */
typedef struct cnp_onnx_header {
    int opset;              /* of the default domain, CNP_ONNX_OPSET_MIN..MAX */
    int64_t ir_version;     /* 0 when absent */
    char producer[256];     /* "producer_name producer_version", or "unknown" */
} cnp_onnx_header;

/* Unpacks size bytes of an ONNX file (`name` is used in messages) and checks
 * the header: a graph, an opset of the default domain that canopy reads.
 * On success *out is a new message the caller frees with cnp_onnx_free()
 * and *hdr is filled; on failure *out is NULL and ctx names the file and
 * what to do. The bytes are not kept. */
cnp_status cnp_onnx_unpack(cnp_ctx *ctx, const void *data, size_t size, const char *name,
                           Onnx__ModelProto **out, cnp_onnx_header *hdr);
void cnp_onnx_free(Onnx__ModelProto *pb);

/* A tensor's type, shape and element count, checked: data inside the file
 * (not external, not segmented), at most CNP_ONNX_MAX_RANK dimensions, each
 * >= 0, their product without overflow, and for FLOAT/DOUBLE/INT32/INT64
 * as many stored values as elements. */
typedef enum {
    CNP_ONNX_T_OTHER = 0,   /* bool, strings, float16, ...: not read */
    CNP_ONNX_T_FLOAT,       /* float32 or float64, read as float */
    CNP_ONNX_T_INT          /* int32 or int64, read as int64 */
} cnp_onnx_tensor_kind;

typedef struct cnp_onnx_tensor_info {
    cnp_onnx_tensor_kind kind;
    int rank;
    int64_t dims[CNP_ONNX_MAX_RANK];
    size_t count;
} cnp_onnx_tensor_info;

/* Checks t and fills *info. Messages say "FILE: WHAT ...". */
cnp_status cnp_onnx_tensor_check(cnp_ctx *ctx, const char *file, const char *what,
                                 const Onnx__TensorProto *t, cnp_onnx_tensor_info *info);
/* The values of a checked FLOAT (INT) tensor into dst (info->count
 * elements, the caller's). */
void cnp_onnx_tensor_floats(const Onnx__TensorProto *t, float *dst);
void cnp_onnx_tensor_ints(const Onnx__TensorProto *t, int64_t *dst);
/* "float32", "int64", ... for messages. Static string. */
const char *cnp_onnx_dtype_name(int32_t data_type);

/* ---- Writing ------------------------------------------------------------ */

/* Copies the ONNX file in data (size bytes) with every byte kept except
 * the metadata_props entries (field 14) whose key is `key`: the first one
 * is re-encoded with `value` in its place, later ones are dropped; when
 * there is none, the entry is appended. `name` is used in messages. On
 * success *out (caller frees with free()) holds *out_size bytes. */
cnp_status cnp_onnx_set_metadata_buffer(cnp_ctx *ctx, const void *data, size_t size,
                                        const char *name, const char *key, const char *value,
                                        void **out, size_t *out_size);

/* ---- canopy's metadata schema (meta.c) --------------------------------- */

/* metadata_props keys canopy writes (scripts/canopy_models.py) and reads;
 * Deepness-style keys are read when canopy's own is absent. */
#define CNP_META_KEY_LABELS "canopy.labels"         /* fallback class_names */
#define CNP_META_KEY_THRESHOLDS "canopy.thresholds"
#define CNP_META_KEY_INT8 "canopy.int8"
#define CNP_META_KEY_MARKERS "canopy.markers"
#define CNP_META_KEY_INPUT_SIZE "canopy.input_size" /* fallback tile_size */
#define CNP_META_KEY_BANDS "canopy.bands"
#define CNP_META_KEY_SCALE "canopy.scale"
#define CNP_META_KEY_MEAN "canopy.mean"             /* fallback standardization_mean */
#define CNP_META_KEY_STD "canopy.std"               /* fallback standardization_std */
#define CNP_META_KEY_GSD "canopy.gsd_m"             /* fallback resolution (cm/px) */
#define CNP_META_KEY_NAME "canopy.name"
#define CNP_META_KEY_VERSION "canopy.version"
#define CNP_META_KEY_TRAINED_ON "canopy.trained_on" /* the product trained on */

/* Defaults: input side without metadata or a fixed export, threshold per
 * label, raw value -> [0, 1] scale; channels past the third get
 * CNP_META_EXTRA_MEAN / _STD (ImageNet's for the first three). A model
 * with CNP_META_KAGGLE_N outputs and no labels gets the Kaggle labels. */
#define CNP_META_DEFAULT_SIZE 224
#define CNP_META_DEFAULT_THRESHOLD 0.2f
#define CNP_META_DEFAULT_SCALE (1.0 / 255.0)
#define CNP_META_EXTRA_MEAN 0.449f
#define CNP_META_EXTRA_STD 0.226f
#define CNP_META_KAGGLE_N 17

/* Bits of cnp_model_meta.defaulted: which fields the file did not give. */
enum {
    CNP_META_DEF_LABELS = 1u << 0,
    CNP_META_DEF_THRESHOLDS = 1u << 1,
    CNP_META_DEF_MARKERS = 1u << 2,
    CNP_META_DEF_INPUT_SIZE = 1u << 3,
    CNP_META_DEF_BANDS = 1u << 4,
    CNP_META_DEF_SCALE = 1u << 5,
    CNP_META_DEF_MEAN = 1u << 6,
    CNP_META_DEF_STD = 1u << 7
};

/* What the model file says about itself (metadata_props "canopy.*",
 * Deepness-style keys as a fallback, the defaults above otherwise).
 * Filled by cnp_meta_parse(), which allocates every array and string;
 * released by cnp_meta_clear(). */
typedef struct cnp_model_meta {
    int n_labels;             /* = number of model outputs */
    char **labels;            /* (n_labels + 1) label names, NULL-terminated (a
                               * GDAL string list) */
    float *thresholds;        /* (n_labels) decision thresholds, default 0.2 */
    unsigned char *is_marker; /* (n_labels) 1 for deforestation-marker labels */
    int input_size;           /* square side in pixels the model expects */
    int n_channels;           /* input channels C */
    int *bands;               /* (n_channels) 1-based source band per channel */
    char **band_names;        /* (n_channels + 1) NULL-terminated band roles/names
                                 ("red", "B04") when canopy.bands names them
                                 (bands is then 1..C), else NULL */
    double scale;             /* raw pixel value -> [0,1], default 1/255 */
    float *mean;              /* (n_channels) subtracted after scale */
    float *std;               /* (n_channels) divided after mean */
    double gsd_m;             /* training ground sampling distance, 0 = unknown */
    char *name;               /* canopy.name or params' default_name */
    char *version;            /* canopy.version or "" */
    char *trained_on;         /* canopy.trained_on or NULL */
    /* canopy.int8 (written by `canopy calibrate`): the range of each
     * activation a convolution reads, over the calibration chips; n_int8
     * is 0 when the key is absent. */
    int n_int8;
    char **int8_names;        /* (n_int8) ONNX tensor names */
    float *int8_min;          /* (n_int8) least value seen, <= 0 */
    float *int8_max;          /* (n_int8) greatest value seen, >= 0 */
    int int8_chips;           /* chips the ranges were measured on */
    unsigned defaulted;       /* CNP_META_DEF_* bits */
} cnp_model_meta;

/* The metadata_props of a model as key/value strings (views, not copies). */
typedef struct cnp_meta_props {
    const char *const *keys;  /* (n) */
    const char *const *vals;  /* (n) */
    size_t n;
} cnp_meta_props;

/* What cnp_meta_parse() needs besides the strings. */
typedef struct cnp_meta_params {
    const char *file;         /* used in messages */
    cnp_meta_props props;
    int n_outputs;            /* features of the graph's output */
    int n_channels;           /* input channels of the graph */
    int fixed_size;           /* the export's fixed square input side, or 0 */
    const char *default_name; /* name when canopy.name is absent, or NULL */
} cnp_meta_params;

/* Parses the metadata into *out (which it first zeroes). On failure ctx
 * names the file and the key; *out may be partly filled: release it with
 * cnp_meta_clear() either way. */
cnp_status cnp_meta_parse(cnp_ctx *ctx, const cnp_meta_params *params, cnp_model_meta *out);
/* Frees what cnp_meta_parse() allocated and zeroes *meta; NULL is a no-op. */
void cnp_meta_clear(cnp_model_meta *meta);
/* The input size the metadata asks for (canopy.input_size or tile_size), 0
 * when none or unreadable (cnp_meta_parse reports that). */
int cnp_meta_peek_input_size(const cnp_meta_props *props);
/* The metadata_props of pb as views into pb (valid while pb lives). On
 * success the caller frees props->keys and props->vals with free(). */
cnp_status cnp_meta_props_get(cnp_ctx *ctx, const Onnx__ModelProto *pb, cnp_meta_props *props);
void cnp_meta_props_release(cnp_meta_props *props);

#endif
