/* onnx_parse.h -- internal to classifier/engine: the ONNX parser's state
 * (onnx_parser.c) used by onnx_load.c (graph, entry points) and
 * onnx_lower.c (operators -> cnp_node, called by onnx_load.c only).
 * Includes the protobuf-c header generated from onnx.proto (onnx/).
 */
#ifndef CNP_ENGINE_ONNX_PARSE_H
#define CNP_ENGINE_ONNX_PARSE_H

#include <stdarg.h>

#include "engine/graph.h"
#include "onnx/onnx.h"
#include "onnx/onnx.pb-c.h"

/* Value names -> value indices (open addressing; keys are not copied). */
typedef struct cnp_name_map {
    int *slot;          /* value index + 1, 0 empty */
    const char **key;
    size_t cap;         /* power of two */
    size_t used;
} cnp_name_map;

/* The value bound to `name`, or -1. */
int cnp_name_map_find(const cnp_name_map *mp, const char *name);
/* Binds `name` (kept by pointer: it must outlive the map) to value v. */
cnp_status cnp_name_map_put(cnp_ctx *ctx, cnp_name_map *mp, const char *name, int v);
void cnp_name_map_free(cnp_name_map *mp);

typedef struct cnp_onnx_parser {
    cnp_ctx *ctx;
    cnp_model *m;
    cnp_name_map names;
    const Onnx__NodeProto *node;  /* node being lowered, for messages */
    int node_index;
} cnp_onnx_parser;

/* onnx_parser.c */

/* Records "FILE: node 'NAME' (OP): message" and returns st. */
cnp_status cnp_onnx_node_verror(cnp_onnx_parser *ps, cnp_status st, const char *fmt, va_list ap);
/* "node 'NAME' (OP)" of the node being lowered, into buf. */
const char *cnp_onnx_node_name(const cnp_onnx_parser *ps, char *buf, size_t size);

/* Fills value v (already named) from tensor t: FCONST, ICONST, or UNDEF for
 * data types canopy does not read. Malformed data is an error naming `what`. */
cnp_status cnp_onnx_load_tensor(cnp_onnx_parser *ps, const Onnx__TensorProto *t, cnp_value *v,
                                const char *what);

/* onnx_lower.c: lowers ps->node into values and nodes of ps->m, by the
 * operator table. */
cnp_status cnp_onnx_lower_node(cnp_onnx_parser *ps);

#endif
