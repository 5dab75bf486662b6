/* read.c -- an ONNX file's bytes -> protobuf-c's ModelProto, with the
 * header checked (a graph, a default-domain opset canopy reads), and the
 * metadata_props as key/value views.
 */
#include "onnx/onnx.h"
#include "onnx/onnx.pb-c.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cnp_status check_header(cnp_ctx *ctx, const char *name, const Onnx__ModelProto *pb,
                               cnp_onnx_header *h)
{
    int found = 0;
    if (!pb->graph)
        return cnp_error(ctx, CNP_ERR_FORMAT, "%s: not an ONNX model (no graph); export the model "
                         "with torch.onnx.export", name);
    for (size_t i = 0; i < pb->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = pb->opset_import[i];
        if (!o->domain || !o->domain[0] || !strcmp(o->domain, "ai.onnx")) {
            if (!o->has_version || o->version < 1 || o->version > 1000)
                return cnp_error(ctx, CNP_ERR_FORMAT, "%s: the opset version is invalid", name);
            h->opset = (int)o->version;
            found = 1;
        }
    }
    if (!found)
        return cnp_error(ctx, CNP_ERR_FORMAT, "%s: the model declares no ONNX opset; the file is "
                         "corrupt or not an ONNX model", name);
    if (h->opset < CNP_ONNX_OPSET_MIN || h->opset > CNP_ONNX_OPSET_MAX)
        return cnp_error(ctx, CNP_ERR_UNSUPPORTED, "%s: opset %d is not supported (canopy reads "
                         "opsets %d to %d); export again with torch.onnx.export(..., "
                         "opset_version=%d)", name, h->opset, CNP_ONNX_OPSET_MIN,
                         CNP_ONNX_OPSET_MAX, CNP_ONNX_OPSET_MAX);
    h->ir_version = pb->has_ir_version ? pb->ir_version : 0;
    snprintf(h->producer, sizeof h->producer, "%.120s%s%.120s",
             pb->producer_name ? pb->producer_name : "",
             pb->producer_version && pb->producer_version[0] ? " " : "",
             pb->producer_version ? pb->producer_version : "");
    if (!h->producer[0])
        snprintf(h->producer, sizeof h->producer, "unknown");
    return CNP_OK;
}

/* protobuf-c's allocator for a model: the tensors' bytes (tens of MB in a
 * ResNet) go to cnp_aligned_alloc's huge-page-advised mappings, so copying
 * them out of the file costs a few dozen page faults instead of thousands;
 * the many small messages go to malloc. A 64-byte tag in front of each
 * block says which. */
#define PB_TAG ((size_t)64)
#define PB_BIG ((size_t)1 << 20)

static void *pb_alloc(void *unused, size_t size)
{
    unsigned char *q;
    (void)unused;
    if (size > SIZE_MAX - PB_TAG)
        return NULL;
    q = size >= PB_BIG ? cnp_aligned_alloc(NULL, size + PB_TAG, 1, "a tensor")
                       : malloc(size + PB_TAG);
    if (!q)
        return NULL;
    *(int *)(void *)q = size >= PB_BIG;
    return q + PB_TAG;
}

static void pb_free(void *unused, void *p)
{
    unsigned char *q;
    (void)unused;
    if (!p)
        return;
    q = (unsigned char *)p - PB_TAG;
    if (*(int *)(void *)q)
        cnp_aligned_free(q);
    else
        free(q);
}

static ProtobufCAllocator pb_allocator = { pb_alloc, pb_free, NULL };

cnp_status cnp_onnx_unpack(cnp_ctx *ctx, const void *data, size_t size, const char *name,
                           Onnx__ModelProto **out, cnp_onnx_header *hdr)
{
    Onnx__ModelProto *pb;
    *out = NULL;
    memset(hdr, 0, sizeof *hdr);
    if (size == 0)
        return cnp_error(ctx, CNP_ERR_FORMAT, "%s: the file is empty; export the model again",
                         name);
    pb = onnx__model_proto__unpack(&pb_allocator, size, data);
    if (!pb)
        return cnp_error(ctx, CNP_ERR_FORMAT, "%s: not an ONNX model, or a truncated or corrupt "
                         "one (the protobuf does not parse); export it again with "
                         "torch.onnx.export", name);
    if (check_header(ctx, name, pb, hdr) != CNP_OK) {
        onnx__model_proto__free_unpacked(pb, &pb_allocator);
        return ctx->status;
    }
    *out = pb;
    return CNP_OK;
}

void cnp_onnx_free(Onnx__ModelProto *pb)
{
    if (pb)
        onnx__model_proto__free_unpacked(pb, &pb_allocator);
}

cnp_status cnp_meta_props_get(cnp_ctx *ctx, const Onnx__ModelProto *pb, cnp_meta_props *props)
{
    size_t n = pb->n_metadata_props;
    const char **keys = cnp_calloc(ctx, n ? n : 1, sizeof *keys, "metadata");
    const char **vals = keys ? cnp_calloc(ctx, n ? n : 1, sizeof *vals, "metadata") : NULL;

    memset(props, 0, sizeof *props);
    if (!vals) {
        free(keys);
        return ctx->status;
    }
    for (size_t i = 0; i < n; i++) {
        keys[i] = pb->metadata_props[i]->key ? pb->metadata_props[i]->key : "";
        vals[i] = pb->metadata_props[i]->value ? pb->metadata_props[i]->value : "";
    }
    props->keys = keys;
    props->vals = vals;
    props->n = n;
    return CNP_OK;
}

void cnp_meta_props_release(cnp_meta_props *props)
{
    if (!props)
        return;
    free((void *)props->keys);
    free((void *)props->vals);
    memset(props, 0, sizeof *props);
}
